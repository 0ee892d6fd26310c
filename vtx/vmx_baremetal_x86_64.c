/* vmx_baremetal_x86_64.c */ typedef int vtx_placeholder_vmx_baremetal_x86_64;
