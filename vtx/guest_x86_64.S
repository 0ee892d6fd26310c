/* guest_x86_64.S */
