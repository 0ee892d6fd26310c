/* vmcs_x86_64.c */ typedef int vtx_placeholder_vmcs_x86_64;
