/* oracle.h: the EPT oracle: scenarios run in the guest, each printed as a v1 test vector on port E9. */
#ifndef VTX_ORACLE_H
#define VTX_ORACLE_H

#include "vtx.h"

void oracle_run(const struct vtx_caps *c);

#endif
