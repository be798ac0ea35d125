/* Compiled extraction for pmd.interleaved.extract: the same single DOM pass as the Python ``_walk_py``
 * (pmd/interleaved/walk.py), over selectolax's lexbor tree by pointer chasing, then ``_select`` (main
 * content, select.py) and the assembly loop of ``assemble`` (assemble.py), with the same results. Each
 * block and image records only its innermost container (ancestors via parent_of), so memory is linear
 * in the page at any depth; the walk stops with budgets.OverBudget past its node, depth or time budget.
 *
 * The struct layouts below copy lexbor 3.1.0 as bundled by selectolax 1.0.2
 * (lexbor/dom/interfaces/{node,element,attr,character_data}.h). selectolax ships no lexbor headers, so
 * they are declared here; pmd.interleaved.compiled uses this module only for a selectolax version whose
 * layout was verified, and checks the layout again on a probe document at import (``probe``, and both
 * walks and documents compared). The only lexbor functions called are the two qualified-name lookups (tag
 * and attribute names, which live in lexbor's static tables or per-document hashes); their addresses come
 * from the already-loaded selectolax extension (ctypes, RTLD_NOLOAD) via ``init``.
 *
 * What is not hot stays in Python and is passed in by ``init``: the tag classification tables,
 * class/id hints (with their cache), the hidden check of containers, URL resolution, <img> cases with
 * non-ASCII attribute values, <picture>, and the <br> line fix-up. Floating point: the same IEEE double
 * operations in the same order as Python's (built with -ffp-contract=off).
 *
 * Entry points: extract() (what extract_document uses), walk() (the walk's Python-level result, for
 * the tests that compare it with _walk_py), utf8_valid() (charset.py), depth_estimate() (budgets.py's
 * pre-parse scan), probe()/init()/set_image_fields()/set_wider()/set_select()/set_comment_heading()/
 * set_budget_error(). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- lexbor 3.1.0 layouts */

typedef struct lxb_node lxb_node;
struct lxb_node {
    void *events;                 /* lxb_dom_event_target_t */
    uintptr_t local_name;         /* tag id */
    uintptr_t prefix;
    uintptr_t ns;
    void *owner_document;
    lxb_node *next;
    lxb_node *prev;
    lxb_node *parent;
    lxb_node *first_child;
    lxb_node *last_child;
    void *user;
    int type;                     /* lxb_dom_node_type_t */
};

typedef struct {
    unsigned char *data;
    size_t length;
} lxb_str;

typedef struct {
    lxb_node node;
    lxb_str data;
} lxb_chardata;

typedef struct lxb_attr lxb_attr;

typedef struct {
    lxb_node node;
    uintptr_t upper_name;
    uintptr_t qualified_name;
    lxb_str *is_value;
    lxb_attr *first_attr;
    lxb_attr *last_attr;
} lxb_element;

struct lxb_attr {
    lxb_node node;
    uintptr_t upper_name;
    uintptr_t qualified_name;
    lxb_str *value;
    void *owner;
    lxb_attr *next;
    lxb_attr *prev;
};

#define NODE_ELEMENT 1
#define NODE_TEXT 3

typedef const unsigned char *(*qname_fn)(const void *, size_t *);

/* ---------------------------------------------------------------- module state (set by init) */

enum { K_INLINE = 0, K_TEXT = 1, K_DROP = 2, K_BR = 3, K_IMG = 4, K_PICTURE = 5, K_LINK = 6, K_BLOCK = 7,
       K_BLOCK_ATTRS = 8, K_UNKNOWN = 127 };
#define FIXED_ID_LIMIT 65536      /* lexbor's standard tag ids; custom elements get pointer ids */
#define EXIT_LINK (-1)
#define EXIT_INLINE 0

static qname_fn attr_qname = NULL, elem_qname = NULL;
static PyObject *kind_of_name = NULL;    /* dict: tag name -> kind */
static PyObject *block_sep = NULL;       /* dict: block tag name -> separator */
static PyObject *special_names = NULL;   /* dict: tag id -> name of non-elements ("-text", ...) */
static PyObject *never_negative = NULL;  /* frozenset of tag names */
static PyObject *token_cache = NULL;     /* dict: class+id string -> (neg, pos, thread) */
static PyObject *hints_fn = NULL;        /* s -> (neg, pos, thread), fills token_cache */
static PyObject *is_hidden_fn = NULL;    /* attrs -> bool */
static PyObject *image_fn = NULL;        /* (attrs, base) -> None | (url, src, alt, width, height) */
static PyObject *picture_fn = NULL;      /* ([(tag, attrs)], base) -> None | (url, src, alt, width, height) */
static PyObject *fix_nul_fn = NULL;      /* text with "\x00" (from <br>) -> text */
static PyObject *block_cls = NULL, *image_cls = NULL;
static PyObject *tag_bonus = NULL;         /* dict: TAG_BONUS */
static PyObject *para_tags = NULL;         /* set: block tags scored from their parent up */
static PyObject *region_tags = NULL;       /* set: sibling tags that may join the region */
static PyObject *boilerplate_match = NULL; /* _BOILERPLATE_LINE.match */
static PyObject *over_budget = NULL;       /* pmd.interleaved.budgets.OverBudget */
static PyObject *str_t = NULL, *str_i = NULL, *str_space = NULL, *str_empty = NULL, *str_nl = NULL, *str_para = NULL;
static PyObject *str_src = NULL, *str_alt_text = NULL, *str_rendered_width = NULL, *str_rendered_height = NULL;

static signed char kind_cache[FIXED_ID_LIMIT];
static signed char sep_cache[FIXED_ID_LIMIT];
static char neg_ok_cache[FIXED_ID_LIMIT];  /* block tag is not in never_negative */
static PyObject *tag_cache[FIXED_ID_LIMIT];

/* ---------------------------------------------------------------- helpers */

static PyObject *decode(const unsigned char *p, size_t n) {
    return PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, "replace");
}

/* node.tag: names of non-elements by id, an element's qualified name, else None (new reference) */
static PyObject *tag_name(lxb_node *node) {
    PyObject *key = PyLong_FromSize_t(node->local_name);
    if (key == NULL) return NULL;
    PyObject *name = PyDict_GetItemWithError(special_names, key);
    Py_DECREF(key);
    if (name != NULL) {
        Py_INCREF(name);
        return name;
    }
    if (PyErr_Occurred()) return NULL;
    if (node->type != NODE_ELEMENT) Py_RETURN_NONE;
    size_t len = 0;
    const unsigned char *s = elem_qname(node, &len);
    if (s == NULL) Py_RETURN_NONE;
    return decode(s, len);
}

/* node.attributes (new reference) */
static PyObject *attributes(lxb_node *node) {
    PyObject *d = PyDict_New();
    if (d == NULL || node->type != NODE_ELEMENT) return d;
    for (lxb_attr *a = ((lxb_element *)node)->first_attr; a != NULL; a = a->next) {
        size_t len = 0;
        const unsigned char *s = attr_qname(a, &len);
        PyObject *k = decode(s, len);
        if (k == NULL) goto fail;
        PyObject *v;
        if (a->value != NULL && a->value->data != NULL) {
            v = decode(a->value->data, a->value->length);
            if (v == NULL) {
                Py_DECREF(k);
                goto fail;
            }
        } else {
            v = Py_None;
            Py_INCREF(v);
        }
        int r = PyDict_SetItem(d, k, v);
        Py_DECREF(k);
        Py_DECREF(v);
        if (r < 0) goto fail;
    }
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

/* the walk's kind of a node, as _KIND_BY_ID/_learn_kind; for blocks also the tag name (borrowed or new
 * in *tag_new), separator and whether the class hints may mark it negative */
static int classify(lxb_node *node, PyObject **tag_out, int *sep_out, int *neg_ok_out, int *owned) {
    uintptr_t tid = node->local_name;
    *owned = 0;
    if (tid < FIXED_ID_LIMIT && kind_cache[tid] != K_UNKNOWN) {
        int k = kind_cache[tid];
        if (k >= K_BLOCK) {
            *tag_out = tag_cache[tid];
            *sep_out = sep_cache[tid];
            *neg_ok_out = neg_ok_cache[tid];
        }
        return k;
    }
    PyObject *name = tag_name(node);
    if (name == NULL) return -1;
    int k = K_INLINE;
    PyObject *kv = PyDict_GetItemWithError(kind_of_name, name);
    if (kv != NULL) {
        k = (int)PyLong_AsLong(kv);
        if (k == -1 && PyErr_Occurred()) goto fail;
    } else if (PyErr_Occurred()) {
        goto fail;
    }
    int sep = 0, neg_ok = 1;
    if (k >= K_BLOCK) {
        PyObject *sv = PyDict_GetItemWithError(block_sep, name);
        if (sv == NULL) {
            if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, name);
            goto fail;
        }
        sep = (int)PyLong_AsLong(sv);
        int c = PySet_Contains(never_negative, name);
        if (c < 0) goto fail;
        neg_ok = !c;
    }
    if (tid < FIXED_ID_LIMIT) {
        kind_cache[tid] = (signed char)k;
        if (k >= K_BLOCK) {
            tag_cache[tid] = name;  /* keeps the reference */
            sep_cache[tid] = (signed char)sep;
            neg_ok_cache[tid] = (char)neg_ok;
            *tag_out = name;
            *sep_out = sep;
            *neg_ok_out = neg_ok;
        } else {
            Py_DECREF(name);
        }
        return k;
    }
    if (k >= K_BLOCK) {
        *tag_out = name;
        *owned = 1;
        *sep_out = sep;
        *neg_ok_out = neg_ok;
    } else {
        Py_DECREF(name);
    }
    return k;
fail:
    Py_DECREF(name);
    return -1;
}

/* ---------------------------------------------------------------- walk state */

typedef struct {
    lxb_node *next;
    int marker;
} frame;

typedef struct {
    PyObject *text;       /* owned */
    Py_ssize_t len;       /* len(text) */
    Py_ssize_t commas;    /* text.count(",") + text.count("，") + text.count("、") */
    Py_ssize_t link_chars;
    int sep;
    Py_ssize_t el;        /* innermost container (ancestors via parent_of: memory linear in the page) */
} block_t;

typedef struct {
    PyObject *fields;     /* owned (url, src, alt, width, height) */
    Py_ssize_t el;        /* innermost container */
} image_t;

typedef struct {
    int is_image;
    Py_ssize_t idx;
} item_t;

/* a growable array */
#define GROW(arr, n, cap, init_cap)                                                    \
    ((n) < (cap) ? 0 : grow_array((void **)&(arr), &(cap), sizeof(*(arr)), (init_cap)))

static int grow_array(void **arr, Py_ssize_t *cap, size_t size, Py_ssize_t init_cap) {
    Py_ssize_t c = *cap ? *cap * 2 : init_cap;
    void *p = PyMem_Realloc(*arr, (size_t)c * size);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *arr = p;
    *cap = c;
    return 0;
}

typedef struct {
    Py_UCS4 *buf;        /* the current run of inline text, whitespace-collapsed as appended: the
                            " ".join("".join(parts).split()) of _emit, built on the fly */
    Py_ssize_t n, cap;
    int space;           /* whitespace seen after the last character kept (a space goes before the next) */
    int nul;             /* a "\x00" (<br>) is in the run */
    Py_UCS4 maxchar;
    Py_ssize_t commas;   /* ",", "，", "、" in the run */
    int nparts;          /* len(parts) */
    Py_ssize_t link_chars;
    int in_link;
    int pending;
    Py_ssize_t *path;    /* the open containers (a stack, linear in the depth) */
    Py_ssize_t depth, path_cap;
    frame *stack;
    Py_ssize_t sp, stack_cap;
    block_t *blocks;
    Py_ssize_t nblocks, blocks_cap;
    image_t *images;
    Py_ssize_t nimages, images_cap;
    item_t *items;
    Py_ssize_t nitems, items_cap;
    /* per element (numbered 1, 2, ...; 0: none) */
    Py_ssize_t *parent_of;
    signed char *negative;
    int *weight;
    Py_ssize_t nel, el_cap;
    PyObject *tag_of;    /* list of tag names */
    PyObject *base;
    /* budgets (0: none): nodes visited, open elements (the stack), a CLOCK_MONOTONIC deadline */
    Py_ssize_t max_nodes, max_depth, nodes;
    double deadline;
} walk_state;

/* raise OverBudget(reason, detail); returns -1 */
static int over(const char *reason, const char *detail) {
    if (over_budget == NULL) {
        PyErr_SetString(PyExc_RuntimeError, reason);
        return -1;
    }
    PyObject *e = PyObject_CallFunction(over_budget, "ss", reason, detail);
    if (e != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(e), e);
        Py_DECREF(e);
    }
    return -1;
}

static double monotonic(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int buf_reserve(walk_state *w, Py_ssize_t extra) {
    if (w->n + extra <= w->cap) return 0;
    Py_ssize_t cap = w->cap ? w->cap : 1024;
    while (cap < w->n + extra) cap *= 2;
    Py_UCS4 *b = PyMem_Realloc(w->buf, (size_t)cap * sizeof(Py_UCS4));
    if (b == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    w->buf = b;
    w->cap = cap;
    return 0;
}

static int path_push(walk_state *w, Py_ssize_t e) {
    if (GROW(w->path, w->depth, w->path_cap, 64) < 0) return -1;
    w->path[w->depth++] = e;
    return 0;
}

static int stack_push(walk_state *w, lxb_node *next, int marker) {
    if (w->max_depth && w->sp >= w->max_depth) return over("dom_too_deep", "the walk");
    if (GROW(w->stack, w->sp, w->stack_cap, 256) < 0) return -1;
    w->stack[w->sp].next = next;
    w->stack[w->sp].marker = marker;
    w->sp++;
    return 0;
}

/* a new element: its number */
static Py_ssize_t new_element(walk_state *w, Py_ssize_t parent, PyObject *tag) {
    if (w->nel >= w->el_cap) {
        Py_ssize_t cap = w->el_cap;
        if (grow_array((void **)&w->parent_of, &cap, sizeof(Py_ssize_t), 256) < 0) return -1;
        cap = w->el_cap;
        if (grow_array((void **)&w->negative, &cap, sizeof(signed char), 256) < 0) return -1;
        cap = w->el_cap;
        if (grow_array((void **)&w->weight, &cap, sizeof(int), 256) < 0) return -1;
        w->el_cap = cap;
    }
    if (PyList_Append(w->tag_of, tag) < 0) return -1;
    Py_ssize_t e = w->nel++;
    w->parent_of[e] = parent;
    w->negative[e] = 0;
    w->weight[e] = 0;
    return e;
}

static int add_item(walk_state *w, int is_image, Py_ssize_t idx) {
    if (GROW(w->items, w->nitems, w->items_cap, 256) < 0) return -1;
    w->items[w->nitems].is_image = is_image;
    w->items[w->nitems].idx = idx;
    w->nitems++;
    return 0;
}

/* _emit: close the current run of inline text as a block (" ".join(text.split()), the <br> fix-up);
 * updates w->pending; clears the run (the caller resets link_chars where Python does) */
static int emit(walk_state *w) {
    Py_UCS4 *b = w->buf;
    Py_ssize_t out = w->n, commas = w->commas;
    int nul = w->nul;
    Py_UCS4 maxchar = w->maxchar;
    w->n = 0;
    w->nparts = 0;
    w->space = 0;
    w->nul = 0;
    w->maxchar = 0;
    w->commas = 0;
    if (out == 0) return 0;
    PyObject *text;
    Py_ssize_t len = out;
    if (maxchar < 256) {  /* the str in its final (1-byte) form directly */
        text = PyUnicode_New(out, maxchar < 128 ? 127 : 255);
        if (text == NULL) return -1;
        Py_UCS1 *d = PyUnicode_1BYTE_DATA(text);
        for (Py_ssize_t i = 0; i < out; i++) d[i] = (Py_UCS1)b[i];
    } else {
        text = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, b, out);
        if (text == NULL) return -1;
    }
    if (nul) {  /* <br> line breaks; only spaces go, so the comma count stays */
        PyObject *t2 = PyObject_CallOneArg(fix_nul_fn, text);
        Py_DECREF(text);
        if (t2 == NULL) return -1;
        text = t2;
        if (!PyUnicode_Check(text)) {
            Py_DECREF(text);
            PyErr_SetString(PyExc_TypeError, "fix_nul must return a str");
            return -1;
        }
        len = PyUnicode_GET_LENGTH(text);
        if (len == 0) {
            Py_DECREF(text);
            return 0;
        }
    }
    if (GROW(w->blocks, w->nblocks, w->blocks_cap, 128) < 0) {
        Py_DECREF(text);
        return -1;
    }
    block_t *bl = &w->blocks[w->nblocks++];
    bl->text = text;
    bl->len = len;
    bl->commas = commas;
    bl->link_chars = w->link_chars;
    bl->sep = w->pending;
    bl->el = w->path[w->depth - 1];
    if (add_item(w, 0, w->nblocks - 1) < 0) return -1;
    w->pending = 0;
    return 0;
}

/* add_image with the (url, src, alt, width, height) the Python helper chose (None: no image) */
static int add_image(walk_state *w, PyObject *r) {
    if (r == Py_None) return 0;
    if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 5) {
        PyErr_SetString(PyExc_TypeError, "image helper must return None or a 5-tuple");
        return -1;
    }
    if (w->nparts) {
        if (emit(w) < 0) return -1;
    }
    if (w->pending < 1) w->pending = 1;
    if (GROW(w->images, w->nimages, w->images_cap, 32) < 0) return -1;
    image_t *im = &w->images[w->nimages++];
    Py_INCREF(r);
    im->fields = r;
    im->el = w->path[w->depth - 1];
    if (add_item(w, 1, w->nimages - 1) < 0) return -1;
    w->link_chars = 0;
    return 0;
}

/* one code point into the run (whitespace collapsed as " ".join(s.split()) does); returns whether it
 * is whitespace. The buffer has room. */
static inline int put(walk_state *w, Py_UCS4 c) {
    if (Py_UNICODE_ISSPACE(c)) {
        w->space = w->n > 0;
        return 1;
    }
    if (w->space) {
        w->buf[w->n++] = ' ';
        w->space = 0;
    }
    w->buf[w->n++] = c;
    if (c > w->maxchar) w->maxchar = c;
    if (c == 0) w->nul = 1;
    else if (c == ',' || c == 0xFF0C || c == 0x3001) w->commas++;
    return 0;
}

/* strict UTF-8 (what Python decodes without errors) into the run; -1 at the first invalid sequence.
 * first/last: code point positions of the first and last non-whitespace character (t.strip()) */
static int put_utf8(walk_state *w, const unsigned char *p, size_t len, Py_ssize_t *first, Py_ssize_t *last) {
    size_t i = 0;
    Py_ssize_t k = 0;
    while (i < len) {
        unsigned int b0 = p[i];
        Py_UCS4 c;
        if (b0 < 0x80) {
            c = b0;
            i += 1;
        } else if (b0 >= 0xC2 && b0 <= 0xDF) {
            if (i + 1 >= len || (p[i + 1] & 0xC0) != 0x80) return -1;
            c = ((b0 & 0x1F) << 6) | (p[i + 1] & 0x3F);
            i += 2;
        } else if (b0 >= 0xE0 && b0 <= 0xEF) {
            if (i + 2 >= len) return -1;
            unsigned int b1 = p[i + 1], b2 = p[i + 2];
            unsigned int lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;
            if (b1 < lo || b1 > hi || (b2 & 0xC0) != 0x80) return -1;
            c = ((b0 & 0x0F) << 12) | ((b1 & 0x3F) << 6) | (b2 & 0x3F);
            i += 3;
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
            if (i + 3 >= len) return -1;
            unsigned int b1 = p[i + 1], b2 = p[i + 2], b3 = p[i + 3];
            unsigned int lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;
            if (b1 < lo || b1 > hi || (b2 & 0xC0) != 0x80 || (b3 & 0xC0) != 0x80) return -1;
            c = ((b0 & 0x07) << 18) | ((b1 & 0x3F) << 12) | ((b2 & 0x3F) << 6) | (b3 & 0x3F);
            i += 4;
        } else {
            return -1;
        }
        if (!put(w, c)) {
            if (*first < 0) *first = k;
            *last = k;
        }
        k++;
    }
    return 0;
}

/* a text node: Python's two branches (collecting; or, before a block's first text, skipping nodes that
 * are whitespace only, which leave the run as it is) */
static int text_node(walk_state *w, lxb_node *node) {
    lxb_str *s = &((lxb_chardata *)node)->data;
    const unsigned char *p = s->data;
    size_t len = s->length;
    if (p == NULL || len == 0) return 0;  /* text_content None or "": nothing in either branch */
    if (buf_reserve(w, (Py_ssize_t)len + 1) < 0) return -1;
    Py_ssize_t n0 = w->n, commas0 = w->commas;
    int space0 = w->space, nul0 = w->nul;
    Py_UCS4 max0 = w->maxchar;
    Py_ssize_t first = -1, last = -1;  /* first/last non-space code point (t.strip()) */
    if (put_utf8(w, p, len, &first, &last) < 0) {
        /* not valid UTF-8: undo, and take the text as selectolax decodes it (errors="replace") */
        w->n = n0;
        w->commas = commas0;
        w->space = space0;
        w->nul = nul0;
        w->maxchar = max0;
        first = last = -1;
        PyObject *t = decode(p, len);
        if (t == NULL) return -1;
        Py_ssize_t m = PyUnicode_GET_LENGTH(t);
        int kind = PyUnicode_KIND(t);
        const void *data = PyUnicode_DATA(t);
        if (buf_reserve(w, m + 1) < 0) {
            Py_DECREF(t);
            return -1;
        }
        for (Py_ssize_t i = 0; i < m; i++) {
            if (!put(w, PyUnicode_READ(kind, data, i))) {
                if (first < 0) first = i;
                last = i;
            }
        }
        Py_DECREF(t);
    }
    if (first < 0 && !w->nparts) return 0;  /* whitespace only (t.isspace()): the run is unchanged */
    w->nparts++;
    if (w->in_link && first >= 0) w->link_chars += last - first + 1;
    return 0;
}

/* walk.THREAD_WEIGHT, walk.GALLERY_WEIGHT (set_select): the weights of a comment-thread container and of
 * a gallery (its text blocks score nothing and are dropped, its images stay) */
static Py_ssize_t thread_weight = -50, gallery_weight = -30;

/* a container's class/id hints, hidden check; returns 1 to skip the element, 0 to enter it */
static int block_attrs(walk_state *w, lxb_node *node, int neg_ok, signed char *neg_out, int *weight_out) {
    lxb_attr *a_hidden = NULL, *a_style = NULL, *a_aria = NULL, *a_class = NULL, *a_id = NULL;
    lxb_attr *a = ((lxb_element *)node)->first_attr;
    if (a == NULL) return 0;  /* no attributes */
    for (; a != NULL; a = a->next) {
        size_t len = 0;
        const unsigned char *s = attr_qname(a, &len);
        switch (len) {
        case 2: if (memcmp(s, "id", 2) == 0) a_id = a; break;
        case 5:
            if (memcmp(s, "class", 5) == 0) a_class = a;
            else if (memcmp(s, "style", 5) == 0) a_style = a;
            break;
        case 6: if (memcmp(s, "hidden", 6) == 0) a_hidden = a; break;
        case 11: if (memcmp(s, "aria-hidden", 11) == 0) a_aria = a; break;
        default: break;
        }
    }
    if (a_hidden || a_style || a_aria) {
        PyObject *attrs = attributes(node);
        if (attrs == NULL) return -1;
        PyObject *r = PyObject_CallOneArg(is_hidden_fn, attrs);
        Py_DECREF(attrs);
        if (r == NULL) return -1;
        int hidden = PyObject_IsTrue(r);
        Py_DECREF(r);
        if (hidden < 0) return -1;
        if (hidden) return 1;
    }
    if (a_class || a_id) {
        PyObject *cls = NULL, *id = NULL;
        if (a_class && a_class->value && a_class->value->data && a_class->value->length) {
            cls = decode(a_class->value->data, a_class->value->length);
            if (cls == NULL) return -1;
        }
        if (a_id && a_id->value && a_id->value->data && a_id->value->length) {
            id = decode(a_id->value->data, a_id->value->length);
            if (id == NULL) {
                Py_XDECREF(cls);
                return -1;
            }
        }
        PyObject *s1 = PyUnicode_Concat(cls ? cls : str_empty, str_space);
        PyObject *s = s1 ? PyUnicode_Concat(s1, id ? id : str_empty) : NULL;
        Py_XDECREF(s1);
        Py_XDECREF(cls);
        Py_XDECREF(id);
        if (s == NULL) return -1;
        PyObject *hit = PyDict_GetItemWithError(token_cache, s);
        if (hit != NULL) {
            Py_INCREF(hit);
        } else if (PyErr_Occurred()) {
            Py_DECREF(s);
            return -1;
        } else {
            hit = PyObject_CallOneArg(hints_fn, s);
            if (hit == NULL) {
                Py_DECREF(s);
                return -1;
            }
        }
        Py_DECREF(s);
        if (!PyTuple_Check(hit) || PyTuple_GET_SIZE(hit) != 4) {
            Py_DECREF(hit);
            PyErr_SetString(PyExc_TypeError, "class hints must be a (negative, positive, thread, gallery) tuple");
            return -1;
        }
        int neg = PyObject_IsTrue(PyTuple_GET_ITEM(hit, 0));
        int pos = PyObject_IsTrue(PyTuple_GET_ITEM(hit, 1));
        int thread = PyObject_IsTrue(PyTuple_GET_ITEM(hit, 2));
        int gallery = PyObject_IsTrue(PyTuple_GET_ITEM(hit, 3));
        Py_DECREF(hit);
        if (neg < 0 || pos < 0 || thread < 0 || gallery < 0) return -1;
        if (neg || pos || gallery) {
            neg = neg && neg_ok;
            *neg_out = (signed char)neg;
            if (neg) *weight_out = thread ? (int)thread_weight : (pos ? 25 : 0) - 25;
            else *weight_out = gallery && neg_ok ? (int)gallery_weight : (pos ? 25 : 0);
        }
    }
    return 0;
}

static int picture(walk_state *w, lxb_node *node) {
    PyObject *children = PyList_New(0);
    if (children == NULL) return -1;
    for (lxb_node *ch = node->first_child; ch != NULL; ch = ch->next) {
        if (ch->type == NODE_TEXT) continue;
        PyObject *name = tag_name(ch);
        if (name == NULL) goto fail;
        int keep = name != Py_None && (PyUnicode_CompareWithASCIIString(name, "source") == 0 ||
                                       PyUnicode_CompareWithASCIIString(name, "img") == 0);
        if (keep) {
            PyObject *attrs = attributes(ch);
            PyObject *pair = attrs ? PyTuple_Pack(2, name, attrs) : NULL;
            Py_XDECREF(attrs);
            if (pair == NULL || PyList_Append(children, pair) < 0) {
                Py_XDECREF(pair);
                Py_DECREF(name);
                goto fail;
            }
            Py_DECREF(pair);
        }
        Py_DECREF(name);
    }
    PyObject *r = PyObject_CallFunctionObjArgs(picture_fn, children, w->base, NULL);
    Py_DECREF(children);
    if (r == NULL) return -1;
    int rc = add_image(w, r);
    Py_DECREF(r);
    return rc;
fail:
    Py_DECREF(children);
    return -1;
}

/* ---------------------------------------------------------------- <img> in C (the common case)
 * _img_item for images whose relevant attributes are ASCII: the hidden check, _image_src (srcset
 * parsing, placeholders), then the Python helper only to resolve the URL. Anything else goes to the
 * Python _img_item with the attributes dict. The attribute and placeholder lists must equal
 * extract.py's (checked at import: IMG_ATTRS, PLACEHOLDER_PARTS). */

static const char *const IMG_ATTRS[] = {
    "data-srcset", "data-lazy-srcset", "srcset",  /* IMG_SRCSET_ATTRS */
    "data-src", "data-lazy-src", "data-original", "data-lazy", "data-url", "data-hi-res-src", "data-full-src",
    "data-img-src", "data-src-fg", "data-lateloadsrc", "data-gt-lazy-src", "src2", "data-large-file",
    "data-orig-file", "src",                     /* IMG_URL_ATTRS */
};
#define N_IMG_ATTRS 18
#define N_SRCSET_ATTRS 3
static const char *const PLACEHOLDER_PARTS[] = {"blank.", "spacer", "placeholder", "pixel.gif", "transparent.",
                                                "lazy.gif", "lazy.png", "lazy.svg"};
#define N_PLACEHOLDER_PARTS 8
static PyObject *image_fields_fn = NULL;  /* (src, base, alt, width, height) -> None | 5-tuple */

static int ascii_bytes(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 0x80) return 0;
    return 1;
}

static inline int py_ws(unsigned char c) {  /* str.isspace() for ASCII */
    return Py_UNICODE_ISSPACE(c);
}

static int contains_ci(const unsigned char *p, size_t n, const char *needle) {  /* needle lower-case */
    size_t m = strlen(needle);
    if (m > n) return 0;
    for (size_t i = 0; i + m <= n; i++) {
        size_t j = 0;
        while (j < m && Py_TOLOWER(p[i + j]) == (unsigned char)needle[j]) j++;
        if (j == m) return 1;
    }
    return 0;
}

/* _is_placeholder for an ASCII URL */
static int placeholder(const unsigned char *p, size_t n) {
    if (n >= 5 && Py_TOLOWER(p[0]) == 'd' && Py_TOLOWER(p[1]) == 'a' && Py_TOLOWER(p[2]) == 't' &&
        Py_TOLOWER(p[3]) == 'a' && p[4] == ':')
        return 1;
    for (int k = 0; k < N_PLACEHOLDER_PARTS; k++)
        if (contains_ci(p, n, PLACEHOLDER_PARTS[k])) return 1;
    return 0;
}

/* parse_srcset for an ASCII value: the chosen candidate as a range of p (*out_len 0: None); -1 error */
static int srcset_best(const unsigned char *p, size_t n, size_t *out_off, size_t *out_len) {
    size_t a = 0, b = n;
    while (a < b && py_ws(p[a])) a++;
    while (b > a && py_ws(p[b - 1])) b--;
    int has_space = 0, has_comma = 0;
    for (size_t i = a; i < b; i++) has_space |= p[i] == ' ';
    for (size_t i = 0; i < n; i++) has_comma |= p[i] == ',';
    int comma_mode = !has_space && has_comma;
    /* candidates as ranges */
    size_t cu[64], cl[64], du[64], dl[64];
    int nc = 0;
    long url_s = -1, url_l = 0, desc_s = -1, desc_l = 0;
    size_t i = 0;
    *out_len = 0;
    while (i < n) {
        size_t ts, te;
        int end;
        if (comma_mode) {
            ts = i;
            while (i < n && p[i] != ',') i++;
            te = i;
            i++;  /* past the comma */
            if (te == ts) continue;  /* empty piece: dropped */
            end = 1;
        } else {
            while (i < n && py_ws(p[i])) i++;
            if (i >= n) break;
            ts = i;
            while (i < n && !py_ws(p[i])) i++;
            te = i;
            end = p[te - 1] == ',';
            while (te > ts && p[te - 1] == ',') te--;
        }
        if (te > ts) {
            if (url_s < 0) {
                url_s = (long)ts;
                url_l = (long)(te - ts);
            } else {
                desc_s = (long)ts;
                desc_l = (long)(te - ts);
            }
        }
        if (end && url_s >= 0) {
            if (nc == 64) return 1;  /* too many: let Python do it */
            cu[nc] = (size_t)url_s;
            cl[nc] = (size_t)url_l;
            du[nc] = desc_s < 0 ? 0 : (size_t)desc_s;
            dl[nc] = desc_s < 0 ? 0 : (size_t)desc_l;
            nc++;
            url_s = desc_s = -1;
        }
    }
    if (url_s >= 0) {
        if (nc == 64) return 1;
        cu[nc] = (size_t)url_s;
        cl[nc] = (size_t)url_l;
        du[nc] = desc_s < 0 ? 0 : (size_t)desc_s;
        dl[nc] = desc_s < 0 ? 0 : (size_t)desc_l;
        nc++;
    }
    int best = -1, bk = -1;
    double bn = -1.0;
    for (int c = 0; c < nc; c++) {
        int k = 1;
        double num = 1.0;
        if (dl[c]) {
            unsigned char last = p[du[c] + dl[c] - 1];
            PyObject *ds = PyUnicode_DecodeASCII((const char *)p + du[c], (Py_ssize_t)dl[c] - 1, NULL);
            if (ds == NULL) return -1;
            PyObject *f = PyFloat_FromString(ds);
            Py_DECREF(ds);
            if (f == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_ValueError)) return -1;
                PyErr_Clear();
            } else {
                double v = PyFloat_AS_DOUBLE(f);
                Py_DECREF(f);
                if (last == 'w') {
                    k = 2;
                    num = v;
                } else if (last == 'x') {
                    k = 1;
                    num = v;
                }
            }
        }
        if (k > bk || (k == bk && num > bn)) {
            best = c;
            bk = k;
            bn = num;
        }
    }
    if (best >= 0) {
        *out_off = cu[best];
        *out_len = cl[best];
    }
    return 0;
}

/* 1: handled (*result: None or the image fields), 0: not the common case (use the Python path), -1 error */
static int img_fast(walk_state *w, lxb_node *node, PyObject **result) {
    lxb_attr *found[N_IMG_ATTRS] = {0};
    lxb_attr *a_style = NULL, *a_aria = NULL, *a_alt = NULL, *a_w = NULL, *a_h = NULL;
    int hidden = 0;
    for (lxb_attr *a = ((lxb_element *)node)->first_attr; a != NULL; a = a->next) {
        size_t len = 0;
        const char *s = (const char *)attr_qname(a, &len);
        if (len == 6 && memcmp(s, "hidden", 6) == 0) hidden = 1;
        else if (len == 11 && memcmp(s, "aria-hidden", 11) == 0) a_aria = a;
        else if (len == 5 && memcmp(s, "style", 5) == 0) a_style = a;
        else if (len == 3 && memcmp(s, "alt", 3) == 0) a_alt = a;
        else if (len == 5 && memcmp(s, "width", 5) == 0) a_w = a;
        else if (len == 6 && memcmp(s, "height", 6) == 0) a_h = a;
        else {
            for (int k = 0; k < N_IMG_ATTRS; k++) {
                if (strlen(IMG_ATTRS[k]) == len && memcmp(IMG_ATTRS[k], s, len) == 0) {
                    found[k] = a;
                    break;
                }
            }
        }
    }
    if (hidden) {
        *result = Py_NewRef(Py_None);
        return 1;
    }
    if (a_aria && a_aria->value && a_aria->value->data && a_aria->value->length == 4 &&
        memcmp(a_aria->value->data, "true", 4) == 0) {
        *result = Py_NewRef(Py_None);
        return 1;
    }
    if (a_style && a_style->value && a_style->value->data && a_style->value->length) {
        const unsigned char *p = a_style->value->data;
        size_t n = a_style->value->length;
        if (!ascii_bytes(p, n)) return 0;
        unsigned char tmp[512];
        if (n > sizeof(tmp)) return 0;
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (p[i] != ' ') tmp[m++] = (unsigned char)Py_TOLOWER(p[i]);
        if (contains_ci(tmp, m, "display:none") || contains_ci(tmp, m, "visibility:hidden")) {
            *result = Py_NewRef(Py_None);
            return 1;
        }
    }
    size_t off = 0, len = 0;
    const unsigned char *src = NULL;
    for (int k = 0; k < N_IMG_ATTRS && src == NULL; k++) {
        lxb_attr *a = found[k];
        if (a == NULL || a->value == NULL || a->value->data == NULL || a->value->length == 0) continue;
        const unsigned char *p = a->value->data;
        size_t n = a->value->length;
        if (!ascii_bytes(p, n)) return 0;
        if (k < N_SRCSET_ATTRS) {
            int r = srcset_best(p, n, &off, &len);
            if (r != 0) return r > 0 ? 0 : -1;
            if (len && !placeholder(p + off, len)) src = p + off;
        } else {
            size_t s0 = 0, s1 = n;
            while (s0 < s1 && py_ws(p[s0])) s0++;
            while (s1 > s0 && py_ws(p[s1 - 1])) s1--;
            if (s1 > s0 && !placeholder(p + s0, s1 - s0)) {
                src = p + s0;
                len = s1 - s0;
            }
        }
    }
    if (src == NULL) {
        *result = Py_NewRef(Py_None);
        return 1;
    }
    PyObject *vals[3] = {NULL, NULL, NULL};
    lxb_attr *va[3] = {a_alt, a_w, a_h};
    for (int k = 0; k < 3; k++) {
        if (va[k] && va[k]->value && va[k]->value->data) {
            vals[k] = decode(va[k]->value->data, va[k]->value->length);
            if (vals[k] == NULL) {
                for (int j = 0; j < k; j++) Py_XDECREF(vals[j]);
                return -1;
            }
        } else {
            vals[k] = Py_NewRef(Py_None);
        }
    }
    PyObject *srcobj = PyUnicode_DecodeASCII((const char *)src, (Py_ssize_t)len, NULL);
    PyObject *r = NULL;
    if (srcobj != NULL) {
        PyObject *args[5] = {srcobj, w->base, vals[0], vals[1], vals[2]};
        r = PyObject_Vectorcall(image_fields_fn, args, 5, NULL);
        Py_DECREF(srcobj);
    }
    for (int k = 0; k < 3; k++) Py_DECREF(vals[k]);
    if (r == NULL) return -1;
    *result = r;
    return 1;
}

/* srcset_best for tests: parse_srcset(value) of an ASCII value, or NotImplemented (Python's case) */
static PyObject *c_parse_srcset(PyObject *self, PyObject *arg) {
    if (!PyUnicode_Check(arg) || !PyUnicode_IS_ASCII(arg)) Py_RETURN_NOTIMPLEMENTED;
    const unsigned char *p = PyUnicode_1BYTE_DATA(arg);
    size_t off = 0, len = 0;
    int r = srcset_best(p, (size_t)PyUnicode_GET_LENGTH(arg), &off, &len);
    if (r < 0) return NULL;
    if (r > 0) Py_RETURN_NOTIMPLEMENTED;
    if (len == 0) Py_RETURN_NONE;
    return PyUnicode_DecodeASCII((const char *)p + off, (Py_ssize_t)len, NULL);
}

static PyObject *set_image_fields(PyObject *self, PyObject *fn) {
    if (fn == Py_None) Py_CLEAR(image_fields_fn);  /* None: every <img> through the Python helper */
    else Py_XSETREF(image_fields_fn, Py_NewRef(fn));
    PyObject *attrs = PyTuple_New(N_IMG_ATTRS), *parts = PyTuple_New(N_PLACEHOLDER_PARTS);
    if (attrs == NULL || parts == NULL) {
        Py_XDECREF(attrs);
        Py_XDECREF(parts);
        return NULL;
    }
    for (int k = 0; k < N_IMG_ATTRS; k++) PyTuple_SET_ITEM(attrs, k, PyUnicode_FromString(IMG_ATTRS[k]));
    for (int k = 0; k < N_PLACEHOLDER_PARTS; k++) PyTuple_SET_ITEM(parts, k, PyUnicode_FromString(PLACEHOLDER_PARTS[k]));
    return Py_BuildValue("(NN)", attrs, parts);
}

static int run_walk(walk_state *w, lxb_node *root) {
    lxb_node *node = root->first_child;
    for (;;) {
        if (node == NULL) {
            if (w->sp == 0) break;
            frame f = w->stack[--w->sp];
            if (f.marker > 0) {  /* a block's exit: its separator */
                if (w->nparts) {
                    if (emit(w) < 0) return -1;
                    w->link_chars = 0;
                }
                if (f.marker > w->pending) w->pending = f.marker;
                w->depth--;
            } else if (f.marker == EXIT_LINK) {
                w->in_link--;
            }
            node = f.next;
            continue;
        }
        if (++w->nodes > w->max_nodes && w->max_nodes) return over("dom_too_many_nodes", "the walk");
        if (!(w->nodes & 4095) && w->deadline > 0 && monotonic() > w->deadline)
            return over("extract_timeout", "the walk");
        PyObject *tag = NULL;
        int sep = 0, neg_ok = 1, owned = 0;
        int k = classify(node, &tag, &sep, &neg_ok, &owned);
        if (k < 0) return -1;
        switch (k) {
        case K_TEXT:
            if (text_node(w, node) < 0) return -1;
            break;
        case K_BLOCK:
        case K_BLOCK_ATTRS: {
            signed char neg = 0;
            int wt = 0;
            if (k == K_BLOCK_ATTRS) {
                int skip = block_attrs(w, node, neg_ok, &neg, &wt);
                if (skip != 0) {
                    if (owned) Py_DECREF(tag);
                    if (skip < 0) return -1;
                    node = node->next;
                    continue;
                }
            }
            if (w->nparts) {
                if (emit(w) < 0) goto block_fail;
                w->link_chars = 0;
            }
            if (sep > w->pending) w->pending = sep;
            Py_ssize_t eid = new_element(w, w->path[w->depth - 1], tag);
            if (owned) Py_DECREF(tag);
            if (eid < 0) return -1;
            w->negative[eid] = neg;
            w->weight[eid] = wt;
            if (path_push(w, eid) < 0) return -1;
            if (stack_push(w, node->next, sep) < 0) return -1;
            node = node->first_child;
            continue;
        block_fail:
            if (owned) Py_DECREF(tag);
            return -1;
        }
        case K_INLINE:
            if (node->first_child != NULL) {
                if (stack_push(w, node->next, EXIT_INLINE) < 0) return -1;
                node = node->first_child;
                continue;
            }
            break;
        case K_LINK:
            if (node->first_child != NULL) {
                w->in_link++;
                if (stack_push(w, node->next, EXIT_LINK) < 0) return -1;
                node = node->first_child;
                continue;
            }
            break;
        case K_DROP:
            break;
        case K_BR:
            if (buf_reserve(w, 4) < 0) return -1;
            put(w, ' ');
            put(w, 0);
            put(w, ' ');
            w->nparts++;
            break;
        case K_IMG: {
            PyObject *r = NULL;
            int fast = image_fields_fn != NULL && node->type == NODE_ELEMENT ? img_fast(w, node, &r) : 0;
            if (fast < 0) return -1;
            if (!fast) {
                PyObject *attrs = attributes(node);
                if (attrs == NULL) return -1;
                r = PyObject_CallFunctionObjArgs(image_fn, attrs, w->base, NULL);
                Py_DECREF(attrs);
                if (r == NULL) return -1;
            }
            int rc = add_image(w, r);
            Py_DECREF(r);
            if (rc < 0) return -1;
            break;
        }
        case K_PICTURE:
            if (picture(w, node) < 0) return -1;
            break;
        default:
            break;
        }
        node = node->next;
    }
    if (w->nparts) {
        if (emit(w) < 0) return -1;
    }
    return 0;
}

static void state_free(walk_state *w) {
    for (Py_ssize_t i = 0; i < w->nblocks; i++) Py_DECREF(w->blocks[i].text);
    for (Py_ssize_t i = 0; i < w->nimages; i++) Py_DECREF(w->images[i].fields);
    Py_XDECREF(w->tag_of);
    PyMem_Free(w->buf);
    PyMem_Free(w->path);
    PyMem_Free(w->stack);
    PyMem_Free(w->blocks);
    PyMem_Free(w->images);
    PyMem_Free(w->items);
    PyMem_Free(w->parent_of);
    PyMem_Free(w->negative);
    PyMem_Free(w->weight);
}

static int state_run(walk_state *w, PyObject *args) {
    unsigned long long root_ptr;
    PyObject *root_tag, *base;
    if (!PyArg_ParseTuple(args, "KOU|nnd", &root_ptr, &root_tag, &base, &w->max_nodes, &w->max_depth, &w->deadline))
        return -1;
    if (block_cls == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "pmd.interleaved._walk.init() was not called");
        return -1;
    }
    w->pending = 2;
    w->base = base;
    w->tag_of = PyList_New(0);
    if (w->tag_of == NULL) return -1;
    /* element 0 is "none"; the root is a block of its own (body): its id heads every path */
    if (new_element(w, 0, str_empty) < 0 || new_element(w, 0, root_tag) < 0) return -1;
    if (path_push(w, 1) < 0) return -1;
    return run_walk(w, (lxb_node *)(uintptr_t)root_ptr);
}

/* walk(root_ptr, root_tag, base): the walk's result as Python objects, as _walk_py returns it */
static PyObject *walk(PyObject *self, PyObject *args) {
    walk_state w;
    memset(&w, 0, sizeof(w));
    PyObject *result = NULL, *blocks = NULL, *items = NULL, *parent_of = NULL, *negative = NULL, *weight = NULL;
    if (state_run(&w, args) < 0) goto done;
    blocks = PyList_New(0);
    items = PyList_New(0);
    parent_of = PyList_New(0);
    negative = PySet_New(NULL);
    weight = PyDict_New();
    if (!blocks || !items || !parent_of || !negative || !weight) goto done;
    for (Py_ssize_t i = 0; i < w.nblocks; i++) {
        block_t *b = &w.blocks[i];
        PyObject *path = PyLong_FromSsize_t(b->el);
        PyObject *lc = PyLong_FromSsize_t(b->link_chars);
        PyObject *sep = PyLong_FromLong(b->sep);
        PyObject *tag = PyList_GET_ITEM(w.tag_of, b->el);
        PyObject *obj = NULL;
        if (path && lc && sep) {
            PyObject *a[5] = {b->text, path, lc, sep, tag};
            obj = PyObject_Vectorcall(block_cls, a, 5, NULL);
        }
        Py_XDECREF(path);
        Py_XDECREF(lc);
        Py_XDECREF(sep);
        if (obj == NULL || PyList_Append(blocks, obj) < 0) {
            Py_XDECREF(obj);
            goto done;
        }
        Py_DECREF(obj);
    }
    for (Py_ssize_t i = 0; i < w.nitems; i++) {
        PyObject *obj, *it;
        if (w.items[i].is_image) {
            image_t *im = &w.images[w.items[i].idx];
            PyObject *path = PyLong_FromSsize_t(im->el);
            if (path == NULL) goto done;
            PyObject *a[6] = {PyTuple_GET_ITEM(im->fields, 0), PyTuple_GET_ITEM(im->fields, 1),
                              PyTuple_GET_ITEM(im->fields, 2), PyTuple_GET_ITEM(im->fields, 3),
                              PyTuple_GET_ITEM(im->fields, 4), path};
            obj = PyObject_Vectorcall(image_cls, a, 6, NULL);
            Py_DECREF(path);
            if (obj == NULL) goto done;
            it = PyTuple_Pack(2, str_i, obj);
            Py_DECREF(obj);
        } else {
            it = PyTuple_Pack(2, str_t, PyList_GET_ITEM(blocks, w.items[i].idx));
        }
        if (it == NULL || PyList_Append(items, it) < 0) {
            Py_XDECREF(it);
            goto done;
        }
        Py_DECREF(it);
    }
    for (Py_ssize_t e = 0; e < w.nel; e++) {
        PyObject *v = PyLong_FromSsize_t(w.parent_of[e]);
        if (v == NULL || PyList_Append(parent_of, v) < 0) {
            Py_XDECREF(v);
            goto done;
        }
        Py_DECREF(v);
        if (w.negative[e] || w.weight[e]) {
            PyObject *key = PyLong_FromSsize_t(e);
            if (key == NULL) goto done;
            int r = 0;
            if (w.negative[e]) r = PySet_Add(negative, key);
            if (r == 0 && w.weight[e]) {
                PyObject *wt = PyLong_FromLong(w.weight[e]);
                r = wt == NULL ? -1 : PyDict_SetItem(weight, key, wt);
                Py_XDECREF(wt);
            }
            Py_DECREF(key);
            if (r < 0) goto done;
        }
    }
    result = PyTuple_Pack(6, blocks, items, parent_of, w.tag_of, negative, weight);
done:
    Py_XDECREF(blocks);
    Py_XDECREF(items);
    Py_XDECREF(parent_of);
    Py_XDECREF(negative);
    Py_XDECREF(weight);
    state_free(&w);
    return result;
}

/* ---------------------------------------------------------------- main content and assembly */

static int tag_in(PyObject *set, PyObject *tag) {
    return PySet_Contains(set, tag);
}

static int wider_para(walk_state *w, block_t *b);

/* _select: region (bool per element; *has_region 0 = whole page) and the negatives that still apply */
/* select.WIDER_MIN_CHARS, WIDER_MIN_PARAS, WIDER_TAGS (set_wider) */
static Py_ssize_t wider_min_chars = 80, wider_min_paras = 3;
static PyObject *wider_tags = NULL;

/* select.LINK_DENSITY_MAX, CLIMB_FRAC, CLIMB_COVER, CLIMB_CANDIDATES, CLIMB_BRANCHES, CLIMB_LEVELS,
 * NESTED_BOX_PARAS (set_select) */
static double link_density_max = 0.8, climb_frac = 0.4, climb_cover = 0.5;
static Py_ssize_t climb_candidates = 10, climb_branches = 3, climb_levels = 8, nested_box_paras = 3;
static Py_ssize_t sibling_box_max = 400;  /* select.SIBLING_BOX_MAX (set_select) */
/* select.COMMENT_HEADING.match, COMMENT_HEADING_TAGS, COMMENT_HEADING_MAX (set_comment_heading) */
static PyObject *comment_match = NULL, *comment_tags = NULL;
static Py_ssize_t comment_max = 0;

/* select._climb: the lowest ancestor of top (climb_levels up at most, never the root) whose children
 * hold strong candidates (the climb_candidates best containers scoring climb_frac of top or more) in
 * climb_branches or more subtrees and climb_cover of all candidates; top itself when there is none; -1 on
 * a memory error */
static Py_ssize_t climb(walk_state *w, Py_ssize_t top, const double *final, const char *scored,
                        const Py_ssize_t *order, Py_ssize_t norder) {
    Py_ssize_t k = climb_candidates > 0 ? climb_candidates : 0, nl = climb_levels > 0 ? climb_levels : 0;
    Py_ssize_t *cand = PyMem_Malloc((size_t)(k + 1) * sizeof(Py_ssize_t));
    Py_ssize_t *anc = PyMem_Malloc((size_t)(nl + 1) * sizeof(Py_ssize_t));
    Py_ssize_t *branch = PyMem_Malloc((size_t)((nl + 1) * (k + 1)) * sizeof(Py_ssize_t));
    Py_ssize_t *nbranch = PyMem_Calloc((size_t)(nl + 1), sizeof(Py_ssize_t));
    Py_ssize_t *cover = PyMem_Calloc((size_t)(nl + 1), sizeof(Py_ssize_t));
    Py_ssize_t result = top;
    if (!cand || !anc || !branch || !nbranch || !cover) {
        PyErr_NoMemory();
        result = -1;
        goto done;
    }
    double thr = climb_frac * final[top];
    Py_ssize_t nc = 0;
    /* the k best in scoring order, ties kept in that order (Python's stable sort) */
    for (Py_ssize_t i = 0; i < norder && k; i++) {
        Py_ssize_t e = order[i];
        if (!scored[e] || !(final[e] >= thr)) continue;
        Py_ssize_t pos = nc;
        while (pos > 0 && final[cand[pos - 1]] < final[e]) pos--;
        if (pos >= k) continue;
        Py_ssize_t last = nc < k ? nc : k - 1;
        for (Py_ssize_t j = last; j > pos; j--) cand[j] = cand[j - 1];
        cand[pos] = e;
        if (nc < k) nc++;
    }
    Py_ssize_t na = 0;
    for (Py_ssize_t a = w->parent_of[top]; a > 1 && na < nl; a = w->parent_of[a]) anc[na++] = a;
    for (Py_ssize_t i = 0; i < nc; i++) {
        Py_ssize_t prev = cand[i];
        for (Py_ssize_t a = w->parent_of[prev]; a; prev = a, a = w->parent_of[a]) {
            for (Py_ssize_t j = 0; j < na; j++) {
                if (anc[j] != a) continue;
                cover[j]++;
                Py_ssize_t *br = branch + j * (k + 1), m = 0;
                while (m < nbranch[j] && br[m] != prev) m++;
                if (m == nbranch[j]) br[nbranch[j]++] = prev;
                break;
            }
        }
    }
    for (Py_ssize_t j = 0; j < na; j++) {
        if (nbranch[j] >= climb_branches && (double)cover[j] >= climb_cover * (double)nc) {
            result = anc[j];
            break;
        }
    }
done:
    PyMem_Free(cand);
    PyMem_Free(anc);
    PyMem_Free(branch);
    PyMem_Free(nbranch);
    PyMem_Free(cover);
    return result;
}

static int wider_para(walk_state *w, block_t *b);

/* _select: region (bool per element; *has_region 0 = whole page), the negatives that still apply and the
 * wider region (children of the region's grandparent beside its parent, not negative) */
static int select_region(walk_state *w, char *region, char *neg, char *wide, int *has_region) {
    Py_ssize_t n_el = w->nel;
    Py_ssize_t *text_len = PyMem_Calloc((size_t)n_el, sizeof(Py_ssize_t));
    Py_ssize_t *link_len = PyMem_Calloc((size_t)n_el, sizeof(Py_ssize_t));
    double *score = PyMem_Calloc((size_t)n_el, sizeof(double));
    char *scored = PyMem_Calloc((size_t)n_el, 1);
    Py_ssize_t *order = PyMem_Calloc((size_t)n_el, sizeof(Py_ssize_t));
    double *final = PyMem_Calloc((size_t)n_el, sizeof(double));
    char *thread = NULL;  /* muted: blocks under it score nothing */
    Py_ssize_t *paras = NULL;
    int rc = -1;
    Py_ssize_t norder = 0;
    static const double div[3] = {1.0, 2.0, 6.0};
    if (!text_len || !link_len || !score || !scored || !order || !final) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t e = 0; e < n_el; e++) neg[e] = w->negative[e];
    *has_region = 0;
    for (Py_ssize_t i = 0; i < w->nblocks; i++) {
        block_t *b = &w->blocks[i];
        Py_ssize_t e = b->el;
        text_len[e] += b->len;
        link_len[e] += b->link_chars;
    }
    for (Py_ssize_t e = n_el - 1; e > 0; e--) {
        Py_ssize_t t = text_len[e];
        if (t) {
            Py_ssize_t par = w->parent_of[e];
            if (par) {
                text_len[par] += t;
                link_len[par] += link_len[e];
            }
        }
    }
    /* blocks under a comment thread, or under a boilerplate box nested in the article's text (its parent
     * holds nested_box_paras long link-free paragraphs), score nothing (select.py) */
    int any_negative = 0;
    for (Py_ssize_t e = 1; e < n_el && !any_negative; e++)
        any_negative = w->negative[e] != 0 || w->weight[e] == gallery_weight;
    if (any_negative) {
        thread = PyMem_Calloc((size_t)n_el, 1);
        paras = PyMem_Calloc((size_t)n_el, sizeof(Py_ssize_t));
        if (!thread || !paras) {
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t i = 0; i < w->nblocks; i++) {
            int wp = wider_para(w, &w->blocks[i]);
            if (wp < 0) goto done;
            if (wp) paras[w->parent_of[w->blocks[i].el]]++;
        }
        for (Py_ssize_t e = 1; e < n_el; e++) {
            Py_ssize_t par = w->parent_of[e];
            thread[e] = thread[par] || w->weight[e] == gallery_weight
                        || (w->negative[e] && (w->weight[e] == thread_weight || paras[par] >= nested_box_paras));
        }
    }
    for (Py_ssize_t i = 0; i < w->nblocks; i++) {
        block_t *b = &w->blocks[i];
        Py_ssize_t own = b->len - b->link_chars;
        if (own < 25 || b->el == 1 || (thread && thread[b->el])) continue;
        double m = (double)own / 100.0;
        double s = 1.0 + (double)b->commas + (m <= 3.0 ? m : 3.0);
        PyObject *btag = PyList_GET_ITEM(w->tag_of, b->el);
        int para = tag_in(para_tags, btag);
        if (para < 0) goto done;
        /* the block's container and two levels up (paragraph-like blocks: from their parent up) */
        Py_ssize_t e = para ? w->parent_of[b->el] : b->el;
        for (int level = 0; level < 3 && e; level++, e = w->parent_of[e]) {
            if (!scored[e]) {
                PyObject *bv = PyDict_GetItemWithError(tag_bonus, PyList_GET_ITEM(w->tag_of, e));
                long bonus = 0;
                if (bv != NULL) {
                    bonus = PyLong_AsLong(bv);
                    if (bonus == -1 && PyErr_Occurred()) goto done;
                } else if (PyErr_Occurred()) {
                    goto done;
                }
                score[e] = (double)(bonus + w->weight[e]);
                scored[e] = 1;
                order[norder++] = e;
            }
            score[e] += s / div[level];
        }
    }
    if (norder == 0) {
        rc = 0;
        goto done;
    }
    Py_ssize_t top = -1;
    for (Py_ssize_t i = 0; i < norder; i++) {
        Py_ssize_t e = order[i];
        Py_ssize_t tl = text_len[e] ? text_len[e] : 1;
        final[e] = score[e] * (1.0 - (double)link_len[e] / (double)tl);
        if (top < 0 || final[e] > final[top]) top = e;
    }
    double top_score = final[top];
    if (top_score < 5) {
        rc = 0;
        goto done;
    }
    top = climb(w, top, final, scored, order, norder);
    if (top < 0) goto done;
    for (Py_ssize_t e = top; e; e = w->parent_of[e]) neg[e] = 0;  /* negative - ancestors */
    memset(region, 0, (size_t)n_el);
    region[top] = 1;
    *has_region = 1;
    Py_ssize_t parent = w->parent_of[top];
    double threshold = top_score * 0.2;
    if (!(10.0 < threshold)) threshold = 10.0;
    if (parent) {
        for (Py_ssize_t e = 1; e < n_el; e++) {
            if (w->parent_of[e] != parent || e == top || w->negative[e]) continue;
            if ((scored[e] ? final[e] : 0.0) >= threshold) {
                region[e] = 1;
                continue;
            }
            Py_ssize_t tl = text_len[e];
            double ld = tl ? (double)link_len[e] / (double)tl : 1.0;
            PyObject *etag = PyList_GET_ITEM(w->tag_of, e);
            int rt = tag_in(region_tags, etag);
            if (rt < 0) goto done;
            if (rt && !(tl <= sibling_box_max || e < top)) {  /* a big box after it: only a paragraph */
                rt = wider_tags != NULL ? tag_in(wider_tags, etag) : 0;
                if (rt < 0) goto done;
            }
            if (rt && ((tl > 80 && ld < 0.25) || (0 < tl && tl <= 80 && ld == 0))) region[e] = 1;
        }
        Py_ssize_t gp = w->parent_of[parent];
        if (gp) {
            for (Py_ssize_t e = 1; e < n_el; e++)
                if (w->parent_of[e] == gp && e != parent && !w->negative[e]) wide[e] = 1;
        }
    }
    rc = 0;
done:
    PyMem_Free(text_len);
    PyMem_Free(link_len);
    PyMem_Free(score);
    PyMem_Free(scored);
    PyMem_Free(order);
    PyMem_Free(final);
    PyMem_Free(thread);
    PyMem_Free(paras);
    return rc;
}

static int append3(PyObject *texts, PyObject *images, PyObject *metadata, PyObject *t, PyObject *i, PyObject *m) {
    if (PyList_Append(texts, t) < 0 || PyList_Append(images, i) < 0 || PyList_Append(metadata, m) < 0) return -1;
    return 0;
}

static int flush_text(PyObject *buf, PyObject *texts, PyObject *images, PyObject *metadata) {
    if (PyList_GET_SIZE(buf) == 0) return 0;
    PyObject *t = PyUnicode_Join(str_empty, buf);
    if (t == NULL) return -1;
    int r = append3(texts, images, metadata, t, Py_None, Py_None);
    Py_DECREF(t);
    if (r < 0) return -1;
    return PyList_SetSlice(buf, 0, PyList_GET_SIZE(buf), NULL);
}

/* select._wider_para: a long paragraph without links (1/0; -1 on error) */
static int wider_para(walk_state *w, block_t *b) {
    if (b->link_chars != 0 || b->len < wider_min_chars || wider_tags == NULL) return 0;
    return tag_in(wider_tags, PyList_GET_ITEM(w->tag_of, b->el));
}

/* select.comment_cut: a kept text block that is a heading opening a comment section (1/0; -1 on error) */
static int comment_heading(walk_state *w, block_t *b) {
    if (comment_match == NULL || b->len >= comment_max) return 0;
    int t = tag_in(comment_tags, PyList_GET_ITEM(w->tag_of, b->el));
    if (t <= 0) return t;
    PyObject *m = PyObject_CallOneArg(comment_match, b->text);
    if (m == NULL) return -1;
    int hit = m != Py_None;
    Py_DECREF(m);
    return hit;
}

/* select.subtree_text: the text length under each container, its subtree included (NULL on no memory) */
static Py_ssize_t *subtree_text(walk_state *w) {
    Py_ssize_t *n = PyMem_Calloc((size_t)w->nel + 1, sizeof(Py_ssize_t));
    if (n == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < w->nblocks; i++) n[w->blocks[i].el] += w->blocks[i].len;
    for (Py_ssize_t e = w->nel - 1; e > 1; e--) n[w->parent_of[e]] += n[e];
    return n;
}

/* extract(root_ptr, root_tag, base, main_content) -> (texts, images, metadata): the walk, _select and
 * extract_document's assembly loop */
static PyObject *extract(PyObject *self, PyObject *args) {
    PyObject *root_ptr, *root_tag, *base, *max_nodes = NULL, *max_depth = NULL, *deadline = NULL;
    int main_content;
    if (!PyArg_ParseTuple(args, "OOUp|OOO", &root_ptr, &root_tag, &base, &main_content, &max_nodes, &max_depth,
                          &deadline))
        return NULL;
    PyObject *wargs = deadline != NULL ? PyTuple_Pack(6, root_ptr, root_tag, base, max_nodes, max_depth, deadline)
                                       : PyTuple_Pack(3, root_ptr, root_tag, base);
    if (wargs == NULL) return NULL;
    walk_state w;
    memset(&w, 0, sizeof(w));
    PyObject *result = NULL, *texts = NULL, *images = NULL, *metadata = NULL, *buf = NULL;
    char *region = NULL, *neg = NULL, *wide = NULL, *caption = NULL;
    Py_ssize_t *wroot = NULL, *paras = NULL, *sub_len = NULL;
    int r = state_run(&w, wargs);
    Py_DECREF(wargs);
    if (r < 0) goto done;
    region = PyMem_Calloc((size_t)w.nel + 1, 1);
    neg = PyMem_Calloc((size_t)w.nel + 1, 1);
    wide = PyMem_Calloc((size_t)w.nel + 1, 1);
    wroot = PyMem_Calloc((size_t)w.nel + 1, sizeof(Py_ssize_t));
    paras = PyMem_Calloc((size_t)w.nel + 1, sizeof(Py_ssize_t));
    caption = PyMem_Calloc((size_t)w.nel + 1, 1);
    if (!region || !neg || !wide || !wroot || !paras || !caption) {
        PyErr_NoMemory();
        goto done;
    }
    int has_region = 0;
    if (main_content) {
        if (select_region(&w, region, neg, wide, &has_region) < 0) goto done;
    } else {
        for (Py_ssize_t e = 0; e < w.nel; e++) neg[e] = w.negative[e];
    }
    /* per container: whether it lies under a boilerplate container still in force, and in the region
     * (parents are numbered before their children: one pass, linear in the page) */
    for (Py_ssize_t e = 1; e < w.nel; e++) {
        Py_ssize_t par = w.parent_of[e];
        neg[e] = neg[e] || neg[par];
        region[e] = region[e] || region[par];
        wroot[e] = wide[e] ? e : wroot[par];  /* the wider-region container it lies in (0: none) */
        /* under a gallery (walk.GALLERY_WEIGHT): its text blocks are dropped, its images stay */
        caption[e] = main_content && (caption[par] || w.weight[e] == gallery_weight);
    }
    /* a wider-region container counts only with several long link-free paragraphs (_wider_para) */
    if (has_region) {
        for (Py_ssize_t i = 0; i < w.nblocks; i++) {
            block_t *b = &w.blocks[i];
            if (!wroot[b->el]) continue;
            int wp = wider_para(&w, b);
            if (wp < 0) goto done;
            if (wp) paras[wroot[b->el]]++;
        }
    }
    texts = PyList_New(0);
    images = PyList_New(0);
    metadata = PyList_New(0);
    buf = PyList_New(0);
    if (!texts || !images || !metadata || !buf) goto done;
    int skipped = 0;
    Py_ssize_t cut = 0;  /* the container of a comment heading (select.COMMENT_HEADING): the rest of it goes */
    for (Py_ssize_t i = 0; i < w.nitems; i++) {
        Py_ssize_t el = w.items[i].is_image ? w.images[w.items[i].idx].el : w.blocks[w.items[i].idx].el;
        if (cut) {  /* items come in document order: the first one outside the container ends the cut */
            Py_ssize_t a = el;
            while (a > cut) a = w.parent_of[a];
            if (a == cut) {
                skipped = 1;
                continue;
            }
            cut = 0;
        }
        /* a comment heading in the region (a boilerplate wrapper of it alone counts too) */
        if (main_content && !w.items[i].is_image && !(has_region && !region[el])) {
            block_t *hb = &w.blocks[w.items[i].idx];
            int ch = comment_heading(&w, hb);
            if (ch < 0) goto done;
            if (ch) {
                cut = w.parent_of[el];
                if (sub_len == NULL && (sub_len = subtree_text(&w)) == NULL) goto done;
                while (cut > 1 && sub_len[cut] == hb->len) cut = w.parent_of[cut];  /* a wrapper of it alone */
                skipped = 1;
                continue;
            }
        }
        int out = neg[el];
        if (!out && has_region && !region[el]) {
            out = 1;
            if (!w.items[i].is_image && paras[wroot[el]] >= wider_min_paras) {
                int wp = wider_para(&w, &w.blocks[w.items[i].idx]);
                if (wp < 0) goto done;
                out = !wp;
            }
        }
        if (out) {
            skipped = 1;
            continue;
        }
        if (!w.items[i].is_image) {
            block_t *b = &w.blocks[w.items[i].idx];
            if (caption[el]) {
                skipped = 1;
                continue;
            }
            Py_ssize_t n = b->len;
            double ld = n ? (double)b->link_chars / (double)n : 1.0;
            int drop = ld > link_density_max;
            if (!drop && n < 40) {
                PyObject *m = PyObject_CallOneArg(boilerplate_match, b->text);
                if (m == NULL) goto done;
                drop = m != Py_None;
                Py_DECREF(m);
            }
            if (drop) {
                skipped = 1;
                continue;
            }
            if (PyList_GET_SIZE(buf)) {
                if (PyList_Append(buf, skipped ? str_para : b->sep == 1 ? str_nl : b->sep == 2 ? str_para : str_space) < 0)
                    goto done;
            }
            if (PyList_Append(buf, b->text) < 0) goto done;
            skipped = 0;
        } else {
            image_t *im = &w.images[w.items[i].idx];
            if (flush_text(buf, texts, images, metadata) < 0) goto done;
            skipped = 0;
            PyObject *md = PyDict_New();
            if (md == NULL) goto done;
            if (PyDict_SetItem(md, str_src, PyTuple_GET_ITEM(im->fields, 1)) < 0 ||
                PyDict_SetItem(md, str_alt_text, PyTuple_GET_ITEM(im->fields, 2)) < 0 ||
                PyDict_SetItem(md, str_rendered_width, PyTuple_GET_ITEM(im->fields, 3)) < 0 ||
                PyDict_SetItem(md, str_rendered_height, PyTuple_GET_ITEM(im->fields, 4)) < 0 ||
                append3(texts, images, metadata, Py_None, PyTuple_GET_ITEM(im->fields, 0), md) < 0) {
                Py_DECREF(md);
                goto done;
            }
            Py_DECREF(md);
        }
    }
    if (flush_text(buf, texts, images, metadata) < 0) goto done;
    result = PyTuple_Pack(3, texts, images, metadata);
done:
    Py_XDECREF(texts);
    Py_XDECREF(images);
    Py_XDECREF(metadata);
    Py_XDECREF(buf);
    PyMem_Free(region);
    PyMem_Free(neg);
    PyMem_Free(wide);
    PyMem_Free(wroot);
    PyMem_Free(paras);
    PyMem_Free(caption);
    PyMem_Free(sub_len);
    state_free(&w);
    return result;
}

/* one node as the C side reads it, for the layout check at import:
 * (tag id, type, next, parent, first_child, text bytes | None, attributes | None, tag name) */
static PyObject *probe(PyObject *self, PyObject *args) {
    unsigned long long ptr;
    if (!PyArg_ParseTuple(args, "K", &ptr)) return NULL;
    if (attr_qname == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "pmd.interleaved._walk.init() was not called");
        return NULL;
    }
    lxb_node *n = (lxb_node *)(uintptr_t)ptr;
    PyObject *text, *attrs, *name;
    if (n->type == NODE_TEXT) {
        lxb_str *s = &((lxb_chardata *)n)->data;
        text = s->data ? PyBytes_FromStringAndSize((const char *)s->data, (Py_ssize_t)s->length) : Py_NewRef(Py_None);
    } else {
        text = Py_NewRef(Py_None);
    }
    attrs = n->type == NODE_ELEMENT ? attributes(n) : Py_NewRef(Py_None);
    name = tag_name(n);
    if (text == NULL || attrs == NULL || name == NULL) {
        Py_XDECREF(text);
        Py_XDECREF(attrs);
        Py_XDECREF(name);
        return NULL;
    }
    return Py_BuildValue("KiKKKNNN", (unsigned long long)n->local_name, n->type,
                         (unsigned long long)(uintptr_t)n->next, (unsigned long long)(uintptr_t)n->parent,
                         (unsigned long long)(uintptr_t)n->first_child, text, attrs, name);
}

static PyObject *init(PyObject *self, PyObject *args) {
    unsigned long long aq, eq;
    PyObject *kind, *bsep, *special, *neverneg, *tcache, *hints, *hidden, *img, *pic, *fixnul, *bcls, *icls;
    PyObject *bonus, *ptags, *rtags, *bmatch;
    if (!PyArg_ParseTuple(args, "KKO!O!O!OO!OOOOOOOO!OOO", &aq, &eq, &PyDict_Type, &kind, &PyDict_Type, &bsep,
                          &PyDict_Type, &special, &neverneg, &PyDict_Type, &tcache, &hints, &hidden, &img, &pic,
                          &fixnul, &bcls, &icls, &PyDict_Type, &bonus, &ptags, &rtags, &bmatch))
        return NULL;
    if (!PyAnySet_Check(neverneg) || !PyAnySet_Check(ptags) || !PyAnySet_Check(rtags)) {
        PyErr_SetString(PyExc_TypeError, "tag sets must be sets");
        return NULL;
    }
    attr_qname = (qname_fn)(uintptr_t)aq;
    elem_qname = (qname_fn)(uintptr_t)eq;
#define SET(var, val) do { Py_XSETREF(var, Py_NewRef(val)); } while (0)
    SET(kind_of_name, kind);
    SET(block_sep, bsep);
    SET(special_names, special);
    SET(never_negative, neverneg);
    SET(token_cache, tcache);
    SET(hints_fn, hints);
    SET(is_hidden_fn, hidden);
    SET(image_fn, img);
    SET(picture_fn, pic);
    SET(fix_nul_fn, fixnul);
    SET(block_cls, bcls);
    SET(image_cls, icls);
    SET(tag_bonus, bonus);
    SET(para_tags, ptags);
    SET(region_tags, rtags);
    SET(boilerplate_match, bmatch);
#undef SET
    for (Py_ssize_t i = 0; i < FIXED_ID_LIMIT; i++) {
        kind_cache[i] = K_UNKNOWN;
        Py_CLEAR(tag_cache[i]);
    }
    Py_RETURN_NONE;
}

/* set_wider(min_chars, min_paras, tags): select.WIDER_MIN_CHARS, WIDER_MIN_PARAS, WIDER_TAGS */
static PyObject *set_wider(PyObject *self, PyObject *args) {
    PyObject *tags;
    if (!PyArg_ParseTuple(args, "nnO", &wider_min_chars, &wider_min_paras, &tags)) return NULL;
    if (!PyAnySet_Check(tags)) {
        PyErr_SetString(PyExc_TypeError, "tags must be a set");
        return NULL;
    }
    Py_XSETREF(wider_tags, Py_NewRef(tags));
    Py_RETURN_NONE;
}

/* set_select(link_density_max, climb_frac, climb_cover, climb_candidates, climb_branches, climb_levels,
 * nested_box_paras, thread_weight, gallery_weight, sibling_box_max):
 * select.py's LINK_DENSITY_MAX, CLIMB_*, NESTED_BOX_PARAS, SIBLING_BOX_MAX, walk.THREAD_WEIGHT, GALLERY_WEIGHT */
static PyObject *set_select(PyObject *self, PyObject *args) {
    if (!PyArg_ParseTuple(args, "dddnnnnnnn", &link_density_max, &climb_frac, &climb_cover, &climb_candidates,
                          &climb_branches, &climb_levels, &nested_box_paras, &thread_weight, &gallery_weight,
                          &sibling_box_max))
        return NULL;
    Py_RETURN_NONE;
}

/* set_comment_heading(match, tags, max_len): select.COMMENT_HEADING.match, COMMENT_HEADING_TAGS and
 * COMMENT_HEADING_MAX (the comment cut of extract's assembly loop; none until set) */
static PyObject *set_comment_heading(PyObject *self, PyObject *args) {
    PyObject *match, *tags;
    Py_ssize_t max_len;
    if (!PyArg_ParseTuple(args, "OOn", &match, &tags, &max_len)) return NULL;
    if (!PyAnySet_Check(tags)) {
        PyErr_SetString(PyExc_TypeError, "tags must be a set");
        return NULL;
    }
    Py_XSETREF(comment_match, Py_NewRef(match));
    Py_XSETREF(comment_tags, Py_NewRef(tags));
    comment_max = max_len;
    Py_RETURN_NONE;
}

/* set_budget_error(cls): the exception class raised (cls(reason, detail)) when a walk exceeds a budget */
static PyObject *set_budget_error(PyObject *self, PyObject *cls) {
    Py_XSETREF(over_budget, Py_NewRef(cls));
    Py_RETURN_NONE;
}

/* budgets.depth_estimate_py in C: the deepest nesting of start over end tags in raw markup. The tag
 * lists (budgets._VOID | budgets._IMPLIED, budgets.RAW_TEXT) by length, so a tag costs a few byte
 * compares (tests compare this with the Python scan on every real page) */
static const char *const NOT_NESTING[9] = {
    NULL, "p", "br hr li dt dd tr td th rb rt rp", "col img wbr rtc", "area base link meta html head body",
    "embed input track param frame image thead tbody tfoot", "source keygen option", "bgsound caption",
    "basefont optgroup colgroup"};
static const char *const RAW_TEXT[9] = {NULL, NULL, NULL, "xmp", NULL, "style title", "script iframe", "noembed",
                                        "textarea noframes"};

/* whether name (lower-case, len bytes) is one of the space-separated words of lists[len] */
static inline int in_list(const char *const *lists, const char *name, Py_ssize_t len) {
    if (len <= 0 || len > 8 || lists[len] == NULL) return 0;
    for (const char *p = lists[len]; *p; p += len + (p[len] == ' ')) {
        if (p[0] == name[0] && memcmp(p, name, (size_t)len) == 0) return 1;
        if (p[len] == 0) break;
    }
    return 0;
}

static inline int name_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

static inline const unsigned char *find_byte(const unsigned char *p, const unsigned char *end, unsigned char c) {
    return p < end ? memchr(p, c, (size_t)(end - p)) : NULL;
}

static const unsigned char *find_str(const unsigned char *p, const unsigned char *end, const char *needle,
                                     int ci) {
    size_t k = strlen(needle);
    for (; p && p + k <= end; p++) {
        p = find_byte(p, end, (unsigned char)needle[0]);
        if (p == NULL || p + k > end) return NULL;
        size_t j = 1;
        for (; j < k; j++) {
            unsigned char c = p[j];
            if (ci && c >= 'A' && c <= 'Z') c += 32;
            if (c != (unsigned char)needle[j]) break;
        }
        if (j == k) return p;
    }
    return NULL;
}

#define MAX_NAME 32

static PyObject *depth_estimate(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *data = view.buf, *end = data + view.len;
    Py_ssize_t depth = 0, best = 0;
    const unsigned char *p = find_byte(data, end, '<');
    while (p != NULL && p < end - 1) {
        unsigned char c = p[1];
        if (c == '!' && end - p >= 4 && p[2] == '-' && p[3] == '-') {
            const unsigned char *j = find_str(p + 4, end, "-->", 0);
            p = j ? find_byte(j + 3, end, '<') : NULL;
            continue;
        }
        if (c == '!' || c == '?') {
            const unsigned char *j = find_byte(p + 2, end, '>');
            p = j ? find_byte(j + 1, end, '<') : NULL;
            continue;
        }
        int is_end = c == '/';
        const unsigned char *k = p + (is_end ? 2 : 1), *m = k;
        while (m < end && m - k <= MAX_NAME && name_char(*m)) m++;
        if (m == k || !((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z'))) {
            p = find_byte(p + 1, end, '<');
            continue;
        }
        char name[MAX_NAME + 4];
        Py_ssize_t len = m - k;
        for (Py_ssize_t i = 0; i < len; i++) name[i] = (char)(k[i] >= 'A' && k[i] <= 'Z' ? k[i] + 32 : k[i]);
        name[len] = 0;
        const unsigned char *j = find_byte(m, end, '>');
        if (j == NULL) break;
        if (is_end) {
            if (depth && !in_list(NOT_NESTING, name, len)) depth--;
        } else if (in_list(RAW_TEXT, name, len)) {
            char needle[MAX_NAME + 6] = "</";
            strcpy(needle + 2, name);
            const unsigned char *close = find_str(j + 1, end, needle, 1);
            p = close ? find_byte(close + 2, end, '<') : NULL;
            continue;
        } else if (!in_list(NOT_NESTING, name, len) && j[-1] != '/') {
            if (++depth > best) best = depth;
        }
        p = find_byte(j + 1, end, '<');
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(best);
}

/* utf8_valid(data) -> whether data.decode("utf-8") succeeds (strict UTF-8: no overlong forms, surrogates
 * or code points above U+10FFFF), without making the str */
static PyObject *utf8_valid(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *p = view.buf;
    size_t len = (size_t)view.len, i = 0;
    int ok = 1;
    while (i < len) {
        if (i + 8 <= len) {
            uint64_t v;
            memcpy(&v, p + i, 8);
            if (!(v & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        unsigned int b0 = p[i];
        if (b0 < 0x80) {
            i += 1;
        } else if (b0 >= 0xC2 && b0 <= 0xDF) {
            if (i + 1 >= len || (p[i + 1] & 0xC0) != 0x80) { ok = 0; break; }
            i += 2;
        } else if (b0 >= 0xE0 && b0 <= 0xEF) {
            if (i + 2 >= len) { ok = 0; break; }
            unsigned int b1 = p[i + 1], b2 = p[i + 2];
            unsigned int lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;
            if (b1 < lo || b1 > hi || (b2 & 0xC0) != 0x80) { ok = 0; break; }
            i += 3;
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
            if (i + 3 >= len) { ok = 0; break; }
            unsigned int b1 = p[i + 1], b2 = p[i + 2], b3 = p[i + 3];
            unsigned int lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;
            if (b1 < lo || b1 > hi || (b2 & 0xC0) != 0x80 || (b3 & 0xC0) != 0x80) { ok = 0; break; }
            i += 4;
        } else {
            ok = 0;
            break;
        }
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(ok);
}

static PyMethodDef methods[] = {
    {"set_image_fields", set_image_fields, METH_O,
     "set_image_fields(fn) -> (attribute list, placeholder parts) of the C <img> path; fn resolves the URL"},
    {"parse_srcset", c_parse_srcset, METH_O, "parse_srcset(value) as the C <img> path does it (tests)"},
    {"utf8_valid", utf8_valid, METH_O, "utf8_valid(data) -> whether data is strict UTF-8"},
    {"depth_estimate", depth_estimate, METH_O, "depth_estimate(data) -> budgets.depth_estimate_py(data)"},
    {"set_wider", set_wider, METH_VARARGS, "set_wider(min_chars, min_paras, tags): the wider region's rule"},
    {"set_comment_heading", set_comment_heading, METH_VARARGS,
     "set_comment_heading(match, tags, max_len): the heading that opens a comment section"},
    {"set_select", set_select, METH_VARARGS,
     "set_select(link_density_max, climb_frac, climb_cover, climb_candidates, climb_branches, climb_levels, "
     "nested_box_paras, thread_weight, gallery_weight, sibling_box_max): "
     "selection rules"},
    {"set_budget_error", set_budget_error, METH_O, "set_budget_error(cls): the exception raised over a budget"},
    {"init", init, METH_VARARGS, "Set the lexbor name functions, tag tables and Python helpers."},
    {"walk", walk, METH_VARARGS, "walk(root_ptr, root_tag, base[, max_nodes, max_depth, deadline]) -> (blocks, items, parent_of, tag_of, "
     "negative, weight)"},
    {"extract", extract, METH_VARARGS,
     "extract(root_ptr, root_tag, base, main_content[, max_nodes, max_depth, deadline]) -> (texts, images, "
     "metadata) of the document"},
    {"probe", probe, METH_VARARGS, "probe(node_ptr) -> the node's fields as read here (layout check)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walk", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__walk(void) {
    str_t = PyUnicode_InternFromString("t");
    str_i = PyUnicode_InternFromString("i");
    str_space = PyUnicode_InternFromString(" ");
    str_empty = PyUnicode_InternFromString("");
    str_nl = PyUnicode_InternFromString("\n");
    str_para = PyUnicode_InternFromString("\n\n");
    str_src = PyUnicode_InternFromString("src");
    str_alt_text = PyUnicode_InternFromString("alt_text");
    str_rendered_width = PyUnicode_InternFromString("rendered_width");
    str_rendered_height = PyUnicode_InternFromString("rendered_height");
    if (!str_t || !str_i || !str_space || !str_empty || !str_nl || !str_para || !str_src || !str_alt_text ||
        !str_rendered_width || !str_rendered_height)
        return NULL;
    return PyModule_Create(&module);
}
