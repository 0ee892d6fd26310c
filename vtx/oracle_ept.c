/* oracle_ept.c */ typedef int vtx_placeholder_oracle_ept;
