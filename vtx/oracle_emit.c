/* oracle_emit.c */ typedef int vtx_placeholder_oracle_emit;
