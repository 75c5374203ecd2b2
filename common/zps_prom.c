/* zps_prom: see zps_prom.h.
 *
 * DESIGN
 * Families and series are separate allocations so their handles stay put
 * while the arrays that list them grow.  A series keeps its label pairs as
 * copied strings and its value (counter, gauge) or its per-bucket counts,
 * sum and count (histogram); buckets are counted per bucket and made
 * cumulative only when rendered.  Rendering walks the registry once into a
 * growing buffer: families in the order they were added (HELP, TYPE, then
 * the samples), so two renders of the same registry are byte for byte the
 * same apart from the values. */
#include "zps_prom.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct zps_prom_series {
    zps_prom_fam_t *fam;
    size_t nlabels;
    char *lname[ZPS_PROM_MAX_LABELS], *lvalue[ZPS_PROM_MAX_LABELS];
    double value;                               /* counter, gauge */
    uint64_t counts[ZPS_PROM_MAX_BUCKETS + 1];  /* histogram: per bucket, +Inf last */
    uint64_t count;
    double sum;
};

struct zps_prom_fam {
    zps_prom_type_t type;
    char *name, *help;
    size_t nbuckets;
    double bounds[ZPS_PROM_MAX_BUCKETS];
    zps_prom_series_t **series;
    size_t nseries, cap;
};

struct zps_prom {
    zps_prom_fam_t **fams;
    size_t nfams, cap;
};

zps_prom_t *zps_prom_new(void) { return calloc(1, sizeof(zps_prom_t)); }

static void s_series_free(zps_prom_series_t *s)
{
    for (size_t i = 0; i < s->nlabels; i++) {
        free(s->lname[i]);
        free(s->lvalue[i]);
    }
    free(s);
}

void zps_prom_destroy(zps_prom_t **pp)
{
    if (!pp || !*pp)
        return;
    zps_prom_t *p = *pp;
    for (size_t i = 0; i < p->nfams; i++) {
        zps_prom_fam_t *f = p->fams[i];
        for (size_t j = 0; j < f->nseries; j++)
            s_series_free(f->series[j]);
        free(f->series);
        free(f->name);
        free(f->help);
        free(f);
    }
    free(p->fams);
    free(p);
    *pp = NULL;
}

static int s_name_ok(const char *n, int colon)
{
    if (!n || !*n)
        return 0;
    for (const char *c = n; *c; c++) {
        int alpha = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_' ||
                    (colon && *c == ':');
        int digit = *c >= '0' && *c <= '9';
        if (!alpha && !(digit && c != n))
            return 0;
    }
    return 1;
}

zps_prom_fam_t *zps_prom_family(zps_prom_t *p, zps_prom_type_t type, const char *name,
                                const char *help, size_t nbuckets, const double *bounds)
{
    if (!p || !s_name_ok(name, 1) || type > ZPS_PROM_HISTOGRAM)
        return NULL;
    if ((type == ZPS_PROM_HISTOGRAM) != (nbuckets > 0) || nbuckets > ZPS_PROM_MAX_BUCKETS)
        return NULL;
    for (size_t i = 0; i < nbuckets; i++)
        if (!isfinite(bounds[i]) || (i && !(bounds[i] > bounds[i - 1])))
            return NULL;
    for (size_t i = 0; i < p->nfams; i++)
        if (!strcmp(p->fams[i]->name, name))
            return NULL;
    if (p->nfams == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 16;
        zps_prom_fam_t **a = realloc(p->fams, cap * sizeof *a);
        if (!a)
            return NULL;
        p->fams = a;
        p->cap = cap;
    }
    zps_prom_fam_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->nbuckets = nbuckets;
    if (nbuckets)
        memcpy(f->bounds, bounds, nbuckets * sizeof *bounds);
    if (!f->name || !f->help) {
        free(f->name);
        free(f->help);
        free(f);
        return NULL;
    }
    p->fams[p->nfams++] = f;
    return f;
}

/* Same label set (names and values, in order)? */
static int s_same_labels(const zps_prom_series_t *s, const char *const *labels, size_t n)
{
    if (s->nlabels != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->lname[i], labels[2 * i]) || strcmp(s->lvalue[i], labels[2 * i + 1]))
            return 0;
    return 1;
}

zps_prom_series_t *zps_prom_series(zps_prom_fam_t *f, const char *const *labels)
{
    if (!f)
        return NULL;
    size_t n = 0;
    while (labels && labels[2 * n]) {
        if (n == ZPS_PROM_MAX_LABELS || !labels[2 * n + 1] || !s_name_ok(labels[2 * n], 0) ||
            !strncmp(labels[2 * n], "__", 2) ||
            (f->type == ZPS_PROM_HISTOGRAM && !strcmp(labels[2 * n], "le")))
            return NULL;
        for (size_t k = 0; k < n; k++)
            if (!strcmp(labels[2 * k], labels[2 * n]))
                return NULL;
        n++;
    }
    for (size_t i = 0; i < f->nseries; i++)
        if (s_same_labels(f->series[i], labels, n))
            return NULL;
    if (f->nseries == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 4;
        zps_prom_series_t **a = realloc(f->series, cap * sizeof *a);
        if (!a)
            return NULL;
        f->series = a;
        f->cap = cap;
    }
    zps_prom_series_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->fam = f;
    for (size_t i = 0; i < n; i++) {
        s->lname[i] = strdup(labels[2 * i]);
        s->lvalue[i] = strdup(labels[2 * i + 1]);
        s->nlabels = i + 1;
        if (!s->lname[i] || !s->lvalue[i]) {
            s_series_free(s);
            return NULL;
        }
    }
    f->series[f->nseries++] = s;
    return s;
}

zps_prom_series_t *zps_prom_scalar(zps_prom_t *p, zps_prom_type_t type, const char *name,
                                   const char *help)
{
    if (type == ZPS_PROM_HISTOGRAM)
        return NULL;
    return zps_prom_series(zps_prom_family(p, type, name, help, 0, NULL), NULL);
}

void zps_prom_set(zps_prom_series_t *s, double v)
{
    if (s)
        s->value = v;
}

void zps_prom_add(zps_prom_series_t *s, double v)
{
    if (s)
        s->value += v;
}

double zps_prom_value(const zps_prom_series_t *s) { return s ? s->value : NAN; }

void zps_prom_observe(zps_prom_series_t *s, double v)
{
    if (!s || s->fam->type != ZPS_PROM_HISTOGRAM)
        return;
    size_t b = 0;
    const zps_prom_fam_t *f = s->fam;
    if (isnan(v))
        b = f->nbuckets;
    else
        while (b < f->nbuckets && v > f->bounds[b])
            b++;
    s->counts[b]++;
    s->count++;
    s->sum += v;
}

char *zps_prom_format_value(double v, char *out)
{
    if (isnan(v))
        return strcpy(out, "NaN");
    if (isinf(v))
        return strcpy(out, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(out, 32, "%.0f", v);
        if (!strcmp(out, "-0"))
            strcpy(out, "0");
        return out;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            break;
    }
    return out;
}

/* ---- rendering ------------------------------------------------------------ */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} s_buf_t;

static void s_put(s_buf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void s_puts(s_buf_t *b, const char *s) { s_put(b, s, strlen(s)); }

/* s escaped: backslash and newline always, the double quote in label values. */
static void s_put_escaped(s_buf_t *b, const char *s, int quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : (quote && *s == '"') ? "\\\"" : NULL;
        if (!rep)
            continue;
        s_put(b, run, (size_t)(s - run));
        s_puts(b, rep);
        run = s + 1;
    }
    s_put(b, run, (size_t)(s - run));
}

/* name{labels[,le="x"]} value\n */
static void s_sample(s_buf_t *b, const char *name, const char *suffix, const zps_prom_series_t *s,
                     const char *le, double v)
{
    char num[32];
    s_puts(b, name);
    s_puts(b, suffix);
    if (s->nlabels || le) {
        s_puts(b, "{");
        for (size_t i = 0; i < s->nlabels; i++) {
            s_puts(b, i ? "," : "");
            s_puts(b, s->lname[i]);
            s_puts(b, "=\"");
            s_put_escaped(b, s->lvalue[i], 1);
            s_puts(b, "\"");
        }
        if (le) {
            s_puts(b, s->nlabels ? ",le=\"" : "le=\"");
            s_puts(b, le);
            s_puts(b, "\"");
        }
        s_puts(b, "}");
    }
    s_puts(b, " ");
    s_puts(b, zps_prom_format_value(v, num));
    s_puts(b, "\n");
}

char *zps_prom_render(const zps_prom_t *p, size_t *len)
{
    static const char *const tname[] = {"counter", "gauge", "histogram"};
    s_buf_t b = {0};
    s_puts(&b, "");
    for (size_t i = 0; p && i < p->nfams; i++) {
        const zps_prom_fam_t *f = p->fams[i];
        s_puts(&b, "# HELP ");
        s_puts(&b, f->name);
        s_puts(&b, " ");
        s_put_escaped(&b, f->help, 0);
        s_puts(&b, "\n# TYPE ");
        s_puts(&b, f->name);
        s_puts(&b, " ");
        s_puts(&b, tname[f->type]);
        s_puts(&b, "\n");
        for (size_t j = 0; j < f->nseries; j++) {
            const zps_prom_series_t *s = f->series[j];
            if (f->type != ZPS_PROM_HISTOGRAM) {
                s_sample(&b, f->name, "", s, NULL, s->value);
                continue;
            }
            uint64_t cum = 0;
            char le[32];
            for (size_t k = 0; k <= f->nbuckets; k++) {
                cum += s->counts[k];
                s_sample(&b, f->name, "_bucket", s,
                         k < f->nbuckets ? zps_prom_format_value(f->bounds[k], le) : "+Inf",
                         (double)cum);
            }
            s_sample(&b, f->name, "_sum", s, NULL, s->sum);
            s_sample(&b, f->name, "_count", s, NULL, (double)s->count);
        }
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}
