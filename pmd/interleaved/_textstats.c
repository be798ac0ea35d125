/* Compiled paragraph statistics for pmd.interleaved.filters: the word tokeniser and the character
 * n-gram repetition ratios, giving exactly the values of the Python/numpy code they replace
 * (tests/test_interleaved_filters.py compares both on every paragraph of the real pages).
 *
 * words(lowered_text) == _WORD.findall(lowered_text), _WORD = r"[^\W_]+(?:['’][^\W_]+)*": [^\W_] is
 *   what the re module's Unicode \w matches minus "_", i.e. Py_UNICODE_ISALNUM.
 * char_rep_ratios(texts, n) == char_repetition_ratios(texts, n): 64-bit polynomial hashes of every
 *   n-character window (h = h * 1099511628211 + code, mod 2**64), grouped by equal hash per text; the
 *   top floor(sqrt(distinct) + 1e-9) counts of repeated hashes over the number of windows.
 * char_rep_ratio(text, n) == char_repetition_ratio(text, n) for texts with at least 64 windows
 *   (isqrt(distinct) there).
 * Texts with surrogate code points (which the numpy path cannot encode) return None: the caller uses
 * its Python code. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MULT 1099511628211ULL

static inline int is_alnum(Py_UCS4 c) {
    return Py_UNICODE_ISALNUM(c);
}

static PyObject *words(PyObject *self, PyObject *arg) {
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "words() needs a str");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    Py_ssize_t i = 0;
    while (i < n) {
        if (!is_alnum(PyUnicode_READ(kind, data, i))) {
            i++;
            continue;
        }
        Py_ssize_t j = i + 1;
        for (;;) {
            while (j < n && is_alnum(PyUnicode_READ(kind, data, j))) j++;
            if (j + 1 < n) {
                Py_UCS4 c = PyUnicode_READ(kind, data, j);
                if ((c == '\'' || c == 0x2019) && is_alnum(PyUnicode_READ(kind, data, j + 1))) {
                    j += 2;
                    continue;
                }
            }
            break;
        }
        PyObject *w = PyUnicode_Substring(arg, i, j);
        if (w == NULL || PyList_Append(out, w) < 0) {
            Py_XDECREF(w);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(w);
        i = j;
    }
    return out;
}

static int cmp_desc(const void *a, const void *b) {
    Py_ssize_t x = *(const Py_ssize_t *)a, y = *(const Py_ssize_t *)b;
    return x > y ? -1 : x < y;
}

/* hashes of the m = len - n + 1 windows of text into h; -1 on surrogates */
static int window_hashes(PyObject *text, Py_ssize_t n, uint64_t *h) {
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    uint64_t top = 1;  /* MULT ** (n - 1) */
    for (Py_ssize_t j = 0; j < n - 1; j++) top *= MULT;
    uint64_t acc = 0;
    for (Py_ssize_t j = 0; j < len; j++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, j);
        if (c >= 0xD800 && c <= 0xDFFF) return -1;
        if (j >= n) acc -= top * (uint64_t)PyUnicode_READ(kind, data, j - n);
        acc = acc * MULT + (uint64_t)c;
        if (j >= n - 1) h[j - n + 1] = acc;
    }
    return 0;
}

/* sum of the top-k counts of repeated hashes (m of them in h), counted in an open-addressing table
 * (keys/counts/used: scratch of at least 2 * m slots rounded up to a power of two) */
static Py_ssize_t top_repeated(const uint64_t *h, Py_ssize_t m, Py_ssize_t *rep, int batched, uint64_t *keys,
                               Py_ssize_t *counts, unsigned char *used, Py_ssize_t *slots_of) {
    int bits = 1;
    while (((Py_ssize_t)1 << bits) < 2 * m) bits++;
    size_t size = (size_t)1 << bits, mask = size - 1;
    memset(used, 0, size);
    Py_ssize_t nd = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        uint64_t k = h[i];
        size_t j = (size_t)((k * 0x9E3779B97F4A7C15ULL) >> (64 - bits));
        for (;;) {
            if (!used[j]) {
                used[j] = 1;
                keys[j] = k;
                counts[j] = 1;
                slots_of[nd++] = (Py_ssize_t)j;
                break;
            }
            if (keys[j] == k) {
                counts[j]++;
                break;
            }
            j = (j + 1) & mask;
        }
    }
    Py_ssize_t nrep = 0;
    for (Py_ssize_t i = 0; i < nd; i++) {
        Py_ssize_t c = counts[slots_of[i]];
        if (c > 1) rep[nrep++] = c;
    }
    if (nrep == 0) return 0;
    Py_ssize_t k;
    if (batched) {
        k = (Py_ssize_t)floor(sqrt((double)nd) + 1e-9);
    } else {
        k = (Py_ssize_t)sqrt((double)nd);
        while (k * k > nd) k--;
        while ((k + 1) * (k + 1) <= nd) k++;
    }
    if (k < 1) k = 1;
    qsort(rep, (size_t)nrep, sizeof(Py_ssize_t), cmp_desc);
    Py_ssize_t s = 0;
    for (Py_ssize_t i = 0; i < nrep && i < k; i++) s += rep[i];
    return s;
}

typedef struct {
    uint64_t *h, *keys;
    Py_ssize_t *rep, *counts, *slots_of;
    unsigned char *used;
} scratch_t;

static void scratch_free(scratch_t *s) {
    PyMem_Free(s->h);
    PyMem_Free(s->keys);
    PyMem_Free(s->rep);
    PyMem_Free(s->counts);
    PyMem_Free(s->slots_of);
    PyMem_Free(s->used);
}

static int scratch_alloc(scratch_t *s, Py_ssize_t m) {
    if (m < 1) m = 1;
    size_t size = 2;
    while (size < (size_t)(2 * m)) size <<= 1;
    memset(s, 0, sizeof(*s));
    s->h = PyMem_Malloc((size_t)m * sizeof(uint64_t));
    s->rep = PyMem_Malloc((size_t)m * sizeof(Py_ssize_t));
    s->slots_of = PyMem_Malloc((size_t)m * sizeof(Py_ssize_t));
    s->keys = PyMem_Malloc(size * sizeof(uint64_t));
    s->counts = PyMem_Malloc(size * sizeof(Py_ssize_t));
    s->used = PyMem_Malloc(size);
    if (!s->h || !s->rep || !s->slots_of || !s->keys || !s->counts || !s->used) {
        scratch_free(s);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static PyObject *char_rep_ratios(PyObject *self, PyObject *args) {
    PyObject *texts;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "O!n", &PyList_Type, &texts, &n)) return NULL;
    if (n < 1) {
        PyErr_SetString(PyExc_ValueError, "n must be >= 1");
        return NULL;
    }
    Py_ssize_t P = PyList_GET_SIZE(texts), maxm = 0;
    for (Py_ssize_t p = 0; p < P; p++) {
        PyObject *t = PyList_GET_ITEM(texts, p);
        if (!PyUnicode_Check(t)) {
            PyErr_SetString(PyExc_TypeError, "texts must be str");
            return NULL;
        }
        Py_ssize_t m = PyUnicode_GET_LENGTH(t) - n + 1;
        if (m > maxm) maxm = m;
    }
    scratch_t sc;
    if (scratch_alloc(&sc, maxm) < 0) return NULL;
    PyObject *out = PyList_New(P);
    if (out == NULL) {
        scratch_free(&sc);
        return NULL;
    }
    for (Py_ssize_t p = 0; p < P; p++) {
        PyObject *t = PyList_GET_ITEM(texts, p);
        Py_ssize_t m = PyUnicode_GET_LENGTH(t) - n + 1;
        double v = 0.0;
        if (m > 0) {
            if (window_hashes(t, n, sc.h) < 0) {
                scratch_free(&sc);
                Py_DECREF(out);
                Py_RETURN_NONE;
            }
            Py_ssize_t num = top_repeated(sc.h, m, sc.rep, 1, sc.keys, sc.counts, sc.used, sc.slots_of);
            v = (double)num / (double)m;
        }
        PyObject *f = PyFloat_FromDouble(v);
        if (f == NULL) {
            scratch_free(&sc);
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, p, f);
    }
    scratch_free(&sc);
    return out;
}

static PyObject *char_rep_ratio(PyObject *self, PyObject *args) {
    PyObject *t;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "Un", &t, &n)) return NULL;
    Py_ssize_t m = PyUnicode_GET_LENGTH(t) - n + 1;
    if (n < 1 || m < 1) {
        PyErr_SetString(PyExc_ValueError, "needs n >= 1 and at least one window");
        return NULL;
    }
    scratch_t sc;
    if (scratch_alloc(&sc, m) < 0) return NULL;
    if (window_hashes(t, n, sc.h) < 0) {
        scratch_free(&sc);
        Py_RETURN_NONE;
    }
    Py_ssize_t num = top_repeated(sc.h, m, sc.rep, 0, sc.keys, sc.counts, sc.used, sc.slots_of);
    scratch_free(&sc);
    return PyFloat_FromDouble(num ? (double)num / (double)m : 0.0);
}

/* how many code points of t are in chars, each counted as often as it is listed there
 * (sum(map(t.count, chars)) for single characters) */
static Py_ssize_t count_in(PyObject *t, PyObject *chars) {
    unsigned char ascii[128] = {0};
    Py_ssize_t nc = PyUnicode_GET_LENGTH(chars);
    int ckind = PyUnicode_KIND(chars);
    const void *cdata = PyUnicode_DATA(chars);
    Py_UCS4 other[64];
    int nother = 0;
    for (Py_ssize_t i = 0; i < nc; i++) {
        Py_UCS4 c = PyUnicode_READ(ckind, cdata, i);
        if (c < 128) {
            ascii[c]++;
        } else if (nother < 64) {
            other[nother++] = c;
        } else {
            PyErr_SetString(PyExc_ValueError, "at most 64 non-ASCII characters");
            return -1;
        }
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(t), count = 0;
    int kind = PyUnicode_KIND(t);
    const void *data = PyUnicode_DATA(t);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 128) {
            count += ascii[c];
        } else {
            for (int j = 0; j < nother; j++) count += other[j] == c;
        }
    }
    return count;
}

/* count_chars(text, chars) -> sum(map(text.count, chars)) for single characters */
static PyObject *count_chars(PyObject *self, PyObject *args) {
    PyObject *t, *chars;
    if (!PyArg_ParseTuple(args, "UU", &t, &chars)) return NULL;
    Py_ssize_t n = count_in(t, chars);
    return n < 0 ? NULL : PyLong_FromSsize_t(n);
}

static Py_ssize_t count_members(PyObject *words, PyObject *set) {
    Py_ssize_t n = 0, nw = PyList_GET_SIZE(words);
    for (Py_ssize_t i = 0; i < nw; i++) {
        int r = PySet_Contains(set, PyList_GET_ITEM(words, i));
        if (r < 0) return -1;
        n += r;
    }
    return n;
}

/* para_counts(text, special, punct, words, stop, flagged) -> (special chars, punctuation chars,
 * stop words, flagged words): the counts of _text_metrics */
static PyObject *para_counts(PyObject *self, PyObject *args) {
    PyObject *t, *special, *punct, *words, *stop, *flag;
    if (!PyArg_ParseTuple(args, "UUUO!OO", &t, &special, &punct, &PyList_Type, &words, &stop, &flag)) return NULL;
    if (!PyAnySet_Check(stop) || !PyAnySet_Check(flag)) {
        PyErr_SetString(PyExc_TypeError, "word lists must be sets");
        return NULL;
    }
    Py_ssize_t ns = count_in(t, special);
    if (ns < 0) return NULL;
    Py_ssize_t np = count_in(t, punct);
    if (np < 0) return NULL;
    Py_ssize_t nst = count_members(words, stop);
    if (nst < 0) return NULL;
    Py_ssize_t nfl = count_members(words, flag);
    if (nfl < 0) return NULL;
    return Py_BuildValue("nnnn", ns, np, nst, nfl);
}

typedef struct {
    Py_hash_t h;
    Py_ssize_t i;
} hidx;

static int cmp_hidx(const void *a, const void *b) {
    const hidx *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* 1 if the n-grams of words at i and j are equal, 0 if not, -1 on error */
static int ngram_eq(PyObject *words, Py_ssize_t i, Py_ssize_t j, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *a = PyList_GET_ITEM(words, i + k), *b = PyList_GET_ITEM(words, j + k);
        if (a == b) continue;
        int r = PyObject_RichCompareBool(a, b, Py_EQ);
        if (r <= 0) return r;
    }
    return 1;
}

/* word_rep(words, n) == repeated_fraction(word_ngrams(words, n)): the share of n-gram occurrences whose
 * n-gram occurs more than once */
static PyObject *word_rep(PyObject *self, PyObject *args) {
    PyObject *words;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "O!n", &PyList_Type, &words, &n)) return NULL;
    Py_ssize_t nw = PyList_GET_SIZE(words), m = nw - n + 1;
    if (n < 1 || m < 1) return PyFloat_FromDouble(0.0);
    Py_hash_t *wh = PyMem_Malloc((size_t)nw * sizeof(Py_hash_t));
    hidx *g = PyMem_Malloc((size_t)m * sizeof(hidx));
    char *done = PyMem_Calloc((size_t)m, 1);
    PyObject *res = NULL;
    if (wh == NULL || g == NULL || done == NULL) {
        PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t i = 0; i < nw; i++) {
        wh[i] = PyObject_Hash(PyList_GET_ITEM(words, i));
        if (wh[i] == -1 && PyErr_Occurred()) goto out;
    }
    for (Py_ssize_t i = 0; i < m; i++) {
        Py_uhash_t h = 0x345678UL;
        for (Py_ssize_t k = 0; k < n; k++) h = (h ^ (Py_uhash_t)wh[i + k]) * 1000003UL + (Py_uhash_t)k;
        g[i].h = (Py_hash_t)h;
        g[i].i = i;
    }
    qsort(g, (size_t)m, sizeof(hidx), cmp_hidx);
    Py_ssize_t repeated = 0;
    for (Py_ssize_t a = 0; a < m;) {
        Py_ssize_t b = a + 1;
        while (b < m && g[b].h == g[a].h) b++;
        if (b - a > 1) {
            for (Py_ssize_t x = a; x < b; x++) {
                if (done[x]) continue;
                Py_ssize_t cnt = 1;
                for (Py_ssize_t y = x + 1; y < b; y++) {
                    if (done[y]) continue;
                    int r = ngram_eq(words, g[x].i, g[y].i, n);
                    if (r < 0) goto out;
                    if (r) {
                        done[y] = 1;
                        cnt++;
                    }
                }
                if (cnt > 1) repeated += cnt;
            }
        }
        a = b;
    }
    res = PyFloat_FromDouble((double)repeated / (double)m);
out:
    PyMem_Free(wh);
    PyMem_Free(g);
    PyMem_Free(done);
    return res;
}

static PyMethodDef methods[] = {
    {"para_counts", para_counts, METH_VARARGS,
     "para_counts(text, special, punct, words, stop, flagged) -> the four counts of _text_metrics"},
    {"word_rep", word_rep, METH_VARARGS, "word_rep(words, n) -> repeated_fraction(word_ngrams(words, n))"},
    {"count_chars", count_chars, METH_VARARGS, "count_chars(text, chars) -> code points of text in chars"},
    {"words", words, METH_O, "words(lowered_text) -> _WORD.findall(lowered_text)"},
    {"char_rep_ratios", char_rep_ratios, METH_VARARGS,
     "char_rep_ratios(texts, n) -> char_repetition_ratios(texts, n), or None (surrogates)"},
    {"char_rep_ratio", char_rep_ratio, METH_VARARGS,
     "char_rep_ratio(text, n) -> char_repetition_ratio(text, n) (>= 64 windows), or None (surrogates)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_textstats", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__textstats(void) {
    return PyModule_Create(&module);
}
