/* vmx_entry_x86_64.S */
