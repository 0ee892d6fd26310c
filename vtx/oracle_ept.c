/* oracle_ept.c: placeholder */
#include "oracle.h"
void oracle_run(const struct vtx_caps *c) { (void)c; }
