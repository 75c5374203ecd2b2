/* zps_sort: LSD radix sort of 64-bit keys (design in zps_sort.h).
 *
 * One body, written once as a macro over the element type and the way a
 * key is read from it (a uint64_t itself, or a pair's key): the digit plan
 * (s_plan), the insertion sort for small n and the counting-sort passes are
 * the same for both element types. */
#include "zps_sort.h"

#define S_SMALL 32u   /* at most this many keys: insertion sort */
#define S_MAX_DIGIT 11u

/* Digits for `range` varying bits and n keys: at most 11 bits, and at most
 * about log2(n) bits (a pass costs 2^width + 2n), at least 4. */
static void s_plan(unsigned range, size_t n, unsigned *passes, unsigned *width)
{
    unsigned maxw = 4;
    while (maxw < S_MAX_DIGIT && ((size_t)1 << (maxw + 1)) <= n)
        maxw++;
    *passes = (range + maxw - 1) / maxw;
    *width = (range + *passes - 1) / *passes;
}

static inline uint64_t s_bits_mask(unsigned lo, unsigned hi)
{
    return (hi - lo >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << (hi - lo)) - 1) << lo;
}

/* Sorts a[0..n) of type T stably by KEY(elem) & mask (varying bits lo..hi-1),
 * returning the array that holds the result. */
#define S_SORT_BODY(T, KEY, a, tmp, n, lo, hi)                                     \
    do {                                                                           \
        const uint64_t mask_ = s_bits_mask(lo, hi);                                \
        if ((n) <= S_SMALL) {                                                      \
            for (size_t i_ = 1; i_ < (n); i_++) {                                  \
                T v_ = (a)[i_];                                                    \
                uint64_t k_ = KEY(v_) & mask_;                                     \
                size_t j_ = i_;                                                    \
                for (; j_ > 0 && (KEY((a)[j_ - 1]) & mask_) > k_; j_--)           \
                    (a)[j_] = (a)[j_ - 1];                                         \
                (a)[j_] = v_;                                                      \
            }                                                                      \
            return (a);                                                            \
        }                                                                          \
        unsigned passes_, width_;                                                  \
        s_plan((hi) - (lo), (n), &passes_, &width_);                               \
        const uint64_t dmask_ = ((uint64_t)1 << width_) - 1;                       \
        size_t cnt_[1u << S_MAX_DIGIT];                                            \
        T *x_ = (a), *y_ = (tmp);                                                  \
        for (unsigned p_ = 0, sh_ = (lo); p_ < passes_; p_++, sh_ += width_) {     \
            memset(cnt_, 0, ((size_t)dmask_ + 1) * sizeof cnt_[0]);                \
            for (size_t i_ = 0; i_ < (n); i_++)                                    \
                cnt_[(KEY(x_[i_]) >> sh_) & dmask_]++;                             \
            size_t sum_ = 0;                                                       \
            for (size_t d_ = 0; d_ <= dmask_; d_++) {                              \
                size_t c_ = cnt_[d_];                                              \
                cnt_[d_] = sum_;                                                   \
                sum_ += c_;                                                        \
            }                                                                      \
            for (size_t i_ = 0; i_ < (n); i_++)                                    \
                y_[cnt_[(KEY(x_[i_]) >> sh_) & dmask_]++] = x_[i_];                \
            T *t_ = x_;                                                            \
            x_ = y_;                                                               \
            y_ = t_;                                                               \
        }                                                                          \
        return x_;                                                                 \
    } while (0)

#define S_KEY_U64(x) (x)
#define S_KEY_PAIR(p) ((p).key)

uint64_t *zps_sort_u64_bits(uint64_t *a, uint64_t *tmp, size_t n, unsigned lo, unsigned hi)
{
    if (n < 2 || lo >= hi)
        return a;
    S_SORT_BODY(uint64_t, S_KEY_U64, a, tmp, n, lo, hi);
}

/* The bits in which the n keys differ: [*lo, *hi); 0 if none do. */
#define S_VARYING(KEY, a, n, lo, hi)                                   \
    do {                                                               \
        uint64_t any_ = 0, all_ = ~(uint64_t)0;                        \
        for (size_t i_ = 0; i_ < (n); i_++) {                          \
            any_ |= KEY((a)[i_]);                                      \
            all_ &= KEY((a)[i_]);                                      \
        }                                                              \
        const uint64_t vary_ = any_ ^ all_;                            \
        if (vary_ == 0)                                                \
            return (a);                                                \
        lo = (unsigned)__builtin_ctzll(vary_);                         \
        hi = 64u - (unsigned)__builtin_clzll(vary_);                   \
    } while (0)

uint64_t *zps_sort_u64(uint64_t *a, uint64_t *tmp, size_t n)
{
    unsigned lo, hi;
    if (n < 2)
        return a;
    S_VARYING(S_KEY_U64, a, n, lo, hi);
    return zps_sort_u64_bits(a, tmp, n, lo, hi);
}

zps_sort_pair_t *zps_sort_pairs(zps_sort_pair_t *a, zps_sort_pair_t *tmp, size_t n)
{
    unsigned lo, hi;
    if (n < 2)
        return a;
    S_VARYING(S_KEY_PAIR, a, n, lo, hi);
    S_SORT_BODY(zps_sort_pair_t, S_KEY_PAIR, a, tmp, n, lo, hi);
}
