/* dg_num: shared numeric helpers of zps-datagen (see dg_num.h). */
#include "dg_num.h"

double dg_hash_gauss(uint64_t key, uint64_t i)
{
    double g0, g1;
    dg_gauss_pair(zps_mix64(2 * i, key), zps_mix64(2 * i + 1, key), &g0, &g1);
    (void)g1;
    return g0;
}
