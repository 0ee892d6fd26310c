/* exit.c */ typedef int vtx_placeholder_exit;
