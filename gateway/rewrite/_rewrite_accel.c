/* Optional accelerator for gateway/rewrite/response_rewrite.py (pure-Python fallback: json_scan.py).
 *
 * One pass over a JSON body: validates it (RFC 8259, strict UTF-8, optional UTF-8 BOM; no
 * limit on depth or on number size, numbers are never converted), finds the URL fields by
 * their place in the structure (the same places as gateway/rewrite/json_scan.py) and writes the body
 * out again with exactly those strings replaced when they are upstream URLs. Every other
 * byte is copied as it is. The GIL is released while a large body is scanned.
 *
 *   Rewriter(prefixes, swap_target, swap_source, templates)
 *   Rewriter.rewrite(body, public) -> bytes | None | NOT_OBJECT | NEEDS_PYTHON
 *
 * prefixes: tuple of bytes, longest first. public: the gateway's base as JSON string content.
 * swap_target/swap_source: bytes or None (deprecated paths swap their first segment).
 * templates: tuple of tuples of bytes (literal) or None (placeholder) - the rules' targets.
 * None means valid and nothing to change; NOT_OBJECT (1) valid but not an object;
 * NEEDS_PYTHON (2) a case left to the exact Python path (a URL field with escapes other than
 * "\/", a meta.key that may need filling in). Invalid JSON raises ValueError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <stdint.h>
#include <string.h>

#define RELEASE_GIL_ABOVE (128 * 1024)

typedef struct { const unsigned char *p; Py_ssize_t n; } Str;

typedef struct {
    PyObject_HEAD
    PyObject *keep; /* the constructor's arguments: keeps every buffer below alive */
    Str *prefixes;
    Py_ssize_t nprefixes;
    int has_swap;
    Str swap_target, swap_source;
    Py_ssize_t ntemplates;
    Py_ssize_t *tpl_start; /* template t is pieces[tpl_start[t] .. tpl_start[t + 1]] */
    Str *pieces;           /* p == NULL: a placeholder */
    unsigned char *greedy; /* per template: see template_match */
    int all_greedy;
} RewriterObject;

/* roles of containers */
enum { R_ROOT, R_TOP, R_MAP, R_META, R_TOPARR, R_RECORD, R_OTHER };
/* what a member's key (or an element's place) says about its value */
enum { K_NONE, K_FIELD, K_MAP, K_META, K_KEY, K_ELEM };
/* value types */
enum { T_NONE, T_OBJECT, T_ARRAY, T_STRING, T_SCALAR };
enum { OK = 0, ERR_INVALID = 1, ERR_NOMEM = 2, HAND_OVER = 3 };

typedef struct { Py_ssize_t start, end; unsigned char escaped, type; } KeyInfo;

typedef struct {
    const RewriterObject *cfg;
    const unsigned char *b;
    Py_ssize_t n, i;
    Str public;
    /* output: input bytes before `copied` are in out already */
    char *out;
    Py_ssize_t olen, ocap, copied;
    const char *err;
    Py_ssize_t errpos;
    /* container stack: one byte per level (role, high bit: array) */
    unsigned char *stack;
    Py_ssize_t depth, scap;
    /* top-level keys and the last top-level "meta" */
    KeyInfo *top;
    Py_ssize_t ntop, tcap;
    int root_type, meta_type, meta_key_type, meta_key_escaped;
    Py_ssize_t meta_key_start, meta_key_end;
    /* path matcher scratch */
    unsigned char *reach, *next;
    Py_ssize_t rcap;
} Scanner;

/* byte classes inside a string: 0 plain, 1 quote, 2 backslash, 3 control, 4 non-ASCII */
static unsigned char STRING_CLASS[256];
/* a character a path placeholder may hold without an escape (rules.SEGMENT_VALUE) */
static unsigned char SEGMENT_CHAR[256];
static unsigned char HEX[256];
#define ONES UINT64_C(0x0101010101010101)
/* Little-endian with GCC or Clang: the index of the lowest byte whose high bit is set in a
 * non-zero HIGHS mask (bytes loaded with memcpy, so the lowest is the first in memory).
 * Elsewhere the byte loop finds it. */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FIRST_FLAGGED(m) (__builtin_ctzll(m) >> 3)
#endif
#define HIGHS UINT64_C(0x8080808080808080)

static void init_tables(void) {
    for (int c = 0; c < 256; c++) {
        STRING_CLASS[c] = c < 0x20 ? 3 : c == '"' ? 1 : c == '\\' ? 2 : c >= 0x80 ? 4 : 0;
        SEGMENT_CHAR[c] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '_' || c == '~' || c == '.' || c == '-';
        HEX[c] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    }
}

static int fail(Scanner *s, const char *message, Py_ssize_t at) {
    if (s->err == NULL) { s->err = message; s->errpos = at; }
    return ERR_INVALID;
}

static int reserve(Scanner *s, Py_ssize_t more) {
    if (s->olen + more <= s->ocap) return OK;
    /* first: room for the whole body and some growth, so that a page rarely reallocates
     * (doubling from a small buffer cost more than the rest of the output work) */
    Py_ssize_t cap = s->ocap ? s->ocap : s->n + (s->n >> 3) + 256;
    while (cap < s->olen + more) cap *= 2;
    char *grown = PyMem_RawRealloc(s->out, (size_t)cap);
    if (grown == NULL) return ERR_NOMEM;
    s->out = grown;
    s->ocap = cap;
    return OK;
}

static int emit(Scanner *s, const void *p, Py_ssize_t n) {
    if (reserve(s, n)) return ERR_NOMEM;
    memcpy(s->out + s->olen, p, (size_t)n);
    s->olen += n;
    return OK;
}

static inline void skip_ws(Scanner *s) {
    const unsigned char *b = s->b;
    Py_ssize_t i = s->i, n = s->n;
    while (i < n && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t')) i++;
    s->i = i;
}

/* Length of a valid UTF-8 sequence at b[i] (lead byte >= 0x80), 0 if invalid. */
static Py_ssize_t utf8_length(const unsigned char *b, Py_ssize_t i, Py_ssize_t n) {
    unsigned char c = b[i];
    if (c >= 0xC2 && c <= 0xDF) return (i + 1 < n && (b[i + 1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (i + 2 >= n) return 0;
        unsigned char d = b[i + 1];
        if (c == 0xE0 && d < 0xA0) return 0; /* overlong */
        if (c == 0xED && d > 0x9F) return 0; /* encoded surrogate */
        return ((d & 0xC0) == 0x80 && (b[i + 2] & 0xC0) == 0x80) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (i + 3 >= n) return 0;
        unsigned char d = b[i + 1];
        if (c == 0xF0 && d < 0x90) return 0;
        if (c == 0xF4 && d > 0x8F) return 0;
        return ((d & 0xC0) == 0x80 && (b[i + 2] & 0xC0) == 0x80 && (b[i + 3] & 0xC0) == 0x80)
                   ? 4 : 0;
    }
    return 0;
}

/* The string token at s->i (its opening quote): on return s->i is after the closing quote,
 * *escapes is 0 (none), 1 (only "\/") or 2 (others). */
static int scan_string(Scanner *s, int *escapes) {
    const unsigned char *b = s->b;
    Py_ssize_t i = s->i + 1, n = s->n;
    int seen = 0;
    for (;;) {
#if defined(__SSE2__) && defined(FIRST_FLAGGED)
        /* sixteen bytes at a time: a quote, a backslash, or a byte below 0x20 as a signed
         * char (a control, or non-ASCII from 0x80) stops the run */
        while (i + 16 <= n) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
            __m128i hit = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                             _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
            unsigned mask = (unsigned)_mm_movemask_epi8(hit);
            if (mask) {
                i += (Py_ssize_t)__builtin_ctz(mask);
                goto classify;
            }
            i += 16;
        }
#endif
        /* eight bytes at a time while none is a quote, a backslash, a control or non-ASCII */
        while (i + 8 <= n) {
            uint64_t x;
            memcpy(&x, b + i, 8);
            uint64_t quote = x ^ (ONES * '"'), slash = x ^ (ONES * '\\');
            uint64_t stop = ((x - ONES * 0x20) & ~x) | ((quote - ONES) & ~quote) |
                            ((slash - ONES) & ~slash) | x;
            stop &= HIGHS;
            if (stop) {
#ifdef FIRST_FLAGGED
                /* the lowest flagged byte is a true stop (a borrow only runs upwards) */
                i += (Py_ssize_t)FIRST_FLAGGED(stop);
                goto classify;
#else
                break;
#endif
            }
            i += 8;
        }
        while (i < n && STRING_CLASS[b[i]] == 0) i++;
    classify:
        if (i >= n) return fail(s, "unterminated string", s->i);
        switch (STRING_CLASS[b[i]]) {
        case 1:
            s->i = i + 1;
            *escapes = seen;
            return OK;
        case 2:
            if (i + 1 >= n) return fail(s, "unterminated string", s->i);
            switch (b[i + 1]) {
            case '/': if (seen == 0) seen = 1; i += 2; break;
            case '"': case '\\': case 'b': case 'f': case 'n': case 'r': case 't':
                seen = 2; i += 2; break;
            case 'u':
                if (i + 5 >= n || !HEX[b[i + 2]] || !HEX[b[i + 3]] || !HEX[b[i + 4]] ||
                    !HEX[b[i + 5]])
                    return fail(s, "bad \\u escape", i);
                seen = 2; i += 6; break;
            default: return fail(s, "bad escape", i);
            }
            break;
        case 3: return fail(s, "control character in string", i);
        default: {
            Py_ssize_t k = utf8_length(b, i, n);
            if (k == 0) return fail(s, "invalid UTF-8", i);
            i += k;
        }
        }
    }
}

static int scan_number(Scanner *s) {
    const unsigned char *b = s->b;
    Py_ssize_t i = s->i, n = s->n;
    if (i < n && b[i] == '-') i++;
    if (i < n && b[i] == '0') i++;
    else if (i < n && b[i] >= '1' && b[i] <= '9') { while (i < n && b[i] >= '0' && b[i] <= '9') i++; }
    else return fail(s, "bad number", s->i);
    if (i < n && b[i] == '.') {
        i++;
        if (!(i < n && b[i] >= '0' && b[i] <= '9')) return fail(s, "bad number", s->i);
        while (i < n && b[i] >= '0' && b[i] <= '9') i++;
    }
    if (i < n && (b[i] == 'e' || b[i] == 'E')) {
        i++;
        if (i < n && (b[i] == '+' || b[i] == '-')) i++;
        if (!(i < n && b[i] >= '0' && b[i] <= '9')) return fail(s, "bad number", s->i);
        while (i < n && b[i] >= '0' && b[i] <= '9') i++;
    }
    s->i = i;
    return OK;
}

static int scan_literal(Scanner *s, const char *word, Py_ssize_t len) {
    if (s->n - s->i < len || memcmp(s->b + s->i, word, (size_t)len) != 0)
        return fail(s, "unexpected character", s->i);
    s->i += len;
    return OK;
}

/* A key's decoded text, when short and ASCII (names compared against are); else -1. */
static Py_ssize_t small_key(const unsigned char *raw, Py_ssize_t n, int escapes, char *buf) {
    if (!escapes) {
        if (n > 24) return -1;
        memcpy(buf, raw, (size_t)n);
        return n;
    }
    Py_ssize_t o = 0;
    for (Py_ssize_t i = 0; i < n; o++) {
        if (o >= 24) return -1;
        if (raw[i] != '\\') { if (raw[i] >= 0x80) return -1; buf[o] = (char)raw[i++]; continue; }
        unsigned char e = raw[i + 1];
        if (e == 'u') {
            unsigned v = 0;
            for (int k = 2; k < 6; k++) {
                unsigned char h = raw[i + k];
                v = v * 16 + (h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
            }
            if (v >= 0x80) return -1;
            buf[o] = (char)v;
            i += 6;
        } else {
            buf[o] = e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r'
                   : e == 't' ? '\t' : (char)e;
            i += 2;
        }
    }
    return o;
}

#define IS(lit) (len == (Py_ssize_t)sizeof(lit) - 1 && memcmp(k, lit, sizeof(lit) - 1) == 0)

static int classify(int role, const char *k, Py_ssize_t len) {
    if (len < 0) return K_NONE;
    switch (role) {
    case R_TOP:
        if (IS("url") || IS("uri") || IS("first_page_uri") || IS("previous_page_uri") ||
            IS("next_page_uri"))
            return K_FIELD;
        if (IS("links") || IS("subresource_uris")) return K_MAP;
        if (IS("meta")) return K_META;
        return K_NONE;
    case R_META:
        if (IS("url") || IS("first_page_url") || IS("previous_page_url") || IS("next_page_url"))
            return K_FIELD;
        if (IS("key")) return K_KEY;
        return K_NONE;
    case R_RECORD:
        if (IS("url") || IS("uri")) return K_FIELD;
        if (IS("links") || IS("subresource_uris")) return K_MAP;
        return K_NONE;
    default:
        return K_NONE;
    }
}

/* One placeholder's run from `at`: units of SEGMENT_CHAR or %XX; the end of the longest. */
static Py_ssize_t unit_run(const unsigned char *path, Py_ssize_t at, Py_ssize_t n) {
    while (at < n) {
        if (SEGMENT_CHAR[path[at]]) at++;
        else if (path[at] == '%' && at + 2 < n && HEX[path[at + 1]] && HEX[path[at + 2]]) at += 3;
        else break;
    }
    return at;
}

/* Does path[0:n] fully match template t? A placeholder is one or more units (SEGMENT_CHAR
 * or %XX). When every placeholder is followed by the end or by a literal that starts with a
 * character no unit starts with ("/"), its run is the longest one (`greedy`); otherwise all
 * the positions a piece can end at are followed, as a regex engine would. */
static int template_match(Scanner *s, Py_ssize_t t, const unsigned char *path, Py_ssize_t n) {
    const RewriterObject *c = s->cfg;
    Py_ssize_t first = c->tpl_start[t], last = c->tpl_start[t + 1];
    if (first < last && c->pieces[first].p != NULL) { /* quick reject on the leading literal */
        Str lit = c->pieces[first];
        if (lit.n > n || memcmp(path, lit.p, (size_t)lit.n) != 0) return 0;
    }
    if (c->greedy[t]) {
        Py_ssize_t at = 0;
        for (Py_ssize_t k = first; k < last; k++) {
            Str piece = c->pieces[k];
            if (piece.p != NULL) {
                if (piece.n > n - at || memcmp(path + at, piece.p, (size_t)piece.n) != 0) return 0;
                at += piece.n;
            } else {
                Py_ssize_t end = unit_run(path, at, n);
                if (end == at) return 0;
                at = end;
            }
        }
        return at == n;
    }
    unsigned char *reach = s->reach, *next = s->next;
    memset(reach, 0, (size_t)n + 1);
    reach[0] = 1;
    for (Py_ssize_t k = first; k < last; k++) {
        Str piece = c->pieces[k];
        int any = 0;
        memset(next, 0, (size_t)n + 1);
        if (piece.p != NULL) {
            for (Py_ssize_t j = 0; j + piece.n <= n; j++)
                if (reach[j] && memcmp(path + j, piece.p, (size_t)piece.n) == 0) {
                    next[j + piece.n] = 1;
                    any = 1;
                }
        } else {
            for (Py_ssize_t j = 0; j < n; j++) {
                if (!(reach[j] || next[j])) continue;
                if (SEGMENT_CHAR[path[j]]) { next[j + 1] = 1; any = 1; }
                else if (path[j] == '%' && j + 2 < n && HEX[path[j + 1]] && HEX[path[j + 2]]) {
                    next[j + 3] = 1;
                    any = 1;
                }
            }
        }
        if (!any) return 0;
        unsigned char *swap = reach; reach = next; next = swap;
    }
    return reach[n];
}

/* A URL field's string token from `start` (its quote) to s->i: replaced when it is one. */
static int field(Scanner *s, Py_ssize_t start, int escapes) {
    const unsigned char *raw = s->b + start + 1;
    Py_ssize_t rawn = s->i - 1 - (start + 1);
    const unsigned char *v = raw;
    Py_ssize_t n = rawn;
    unsigned char small[512];
    unsigned char *decoded = NULL;
    if (escapes == 2) return HAND_OVER;
    if (escapes == 1) { /* only "\/": drop the backslashes */
        decoded = n <= (Py_ssize_t)sizeof small ? small : PyMem_RawMalloc((size_t)n);
        if (decoded == NULL) return ERR_NOMEM;
        Py_ssize_t o = 0;
        for (Py_ssize_t i = 0; i < rawn; i++) {
            if (raw[i] == '\\') i++;
            decoded[o++] = raw[i];
        }
        v = decoded;
        n = o;
    }
    int rc = OK;
    const RewriterObject *c = s->cfg;
    for (Py_ssize_t p = 0; p < c->nprefixes; p++) {
        Str pre = c->prefixes[p];
        if (n < pre.n || memcmp(v, pre.p, (size_t)pre.n) != 0) continue;
        if (n > pre.n && v[pre.n] != '/' && v[pre.n] != '?') continue;
        const unsigned char *rest = v + pre.n;
        Py_ssize_t restn = n - pre.n;
        const unsigned char *mark = memchr(rest, '?', (size_t)restn);
        Py_ssize_t pathn = mark ? mark - rest : restn;
        Py_ssize_t mark_at = s->olen;
        /* copy what precedes the token, then the new token */
        if ((rc = emit(s, s->b + s->copied, start - s->copied))) break;
        Py_ssize_t token_at = s->olen;
        if ((rc = emit(s, "\"", 1)) || (rc = emit(s, s->public.p, s->public.n))) break;
        int swapped = 0;
        if (pathn == 0) {
            rc = emit(s, "/", 1);
        } else {
            if (c->has_swap && c->ntemplates) {
                if (!c->all_greedy && pathn + 1 > s->rcap) {
                    PyMem_RawFree(s->reach);
                    PyMem_RawFree(s->next);
                    s->rcap = pathn + 1;
                    s->reach = PyMem_RawMalloc((size_t)s->rcap);
                    s->next = PyMem_RawMalloc((size_t)s->rcap);
                    if (!s->reach || !s->next) { rc = ERR_NOMEM; break; }
                }
                for (Py_ssize_t t = 0; t < c->ntemplates && !swapped; t++)
                    swapped = template_match(s, t, rest, pathn);
            }
            if (swapped && pathn >= c->swap_target.n &&
                memcmp(rest, c->swap_target.p, (size_t)c->swap_target.n) == 0)
                rc = emit(s, c->swap_source.p, c->swap_source.n) ||
                     emit(s, rest + c->swap_target.n, pathn - c->swap_target.n);
            else
                rc = emit(s, rest, pathn);
        }
        if (rc || (rc = emit(s, rest + pathn, restn - pathn)) || (rc = emit(s, "\"", 1))) break;
        /* unchanged after all (public base == prefix): keep the original token */
        if (s->olen - token_at - 2 == n && memcmp(s->out + token_at + 1, v, (size_t)n) == 0)
            s->olen = mark_at;
        else
            s->copied = s->i;
        break;
    }
    if (decoded != NULL && decoded != small) PyMem_RawFree(decoded);
    return rc;
}

static int push(Scanner *s, unsigned char frame) {
    if (s->depth == s->scap) {
        Py_ssize_t cap = s->scap ? s->scap * 2 : 64;
        unsigned char *grown = PyMem_RawRealloc(s->stack, (size_t)cap);
        if (grown == NULL) return ERR_NOMEM;
        s->stack = grown;
        s->scap = cap;
    }
    s->stack[s->depth++] = frame;
    return OK;
}

static int note_top_key(Scanner *s, Py_ssize_t start, Py_ssize_t end, int escapes) {
    if (s->ntop == s->tcap) {
        Py_ssize_t cap = s->tcap ? s->tcap * 2 : 16;
        KeyInfo *grown = PyMem_RawRealloc(s->top, (size_t)cap * sizeof(KeyInfo));
        if (grown == NULL) return ERR_NOMEM;
        s->top = grown;
        s->tcap = cap;
    }
    s->top[s->ntop++] = (KeyInfo){start + 1, end - 1, (unsigned char)(escapes != 0), T_NONE};
    return OK;
}

#define ARRAY_BIT 0x80
#define CHECK(x) do { int rc_ = (x); if (rc_) return rc_; } while (0)

static int walk(Scanner *s) {
    const unsigned char *b = s->b;
    int role = R_ROOT, kc = K_NONE;
    if (s->n >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF) s->i = 3;
    for (;;) {
        /* a value, in a container of `role`, whose key (or place) says `kc` */
        skip_ws(s);
        if (s->i >= s->n) return fail(s, "a value was expected", s->i);
        Py_ssize_t start = s->i;
        unsigned char ch = b[start];
        int type = ch == '{' ? T_OBJECT : ch == '[' ? T_ARRAY : ch == '"' ? T_STRING : T_SCALAR;
        if (role == R_ROOT) s->root_type = type;
        else if (role == R_TOP) {
            s->top[s->ntop - 1].type = (unsigned char)type;
            if (kc == K_META) { s->meta_type = type; s->meta_key_type = T_NONE; }
        } else if (role == R_META && kc == K_KEY) {
            s->meta_key_type = type;
            s->meta_key_escaped = 0;
        }
        if (type == T_OBJECT || type == T_ARRAY) {
            int child;
            if (type == T_OBJECT)
                child = role == R_ROOT ? R_TOP
                      : kc == K_MAP ? R_MAP : kc == K_META ? R_META : kc == K_ELEM ? R_RECORD
                      : R_OTHER;
            else
                child = role == R_TOP ? R_TOPARR : R_OTHER;
            s->i++;
            skip_ws(s);
            if (s->i < s->n && b[s->i] == (ch == '{' ? '}' : ']')) {
                s->i++;
                goto after_value;
            }
            CHECK(push(s, (unsigned char)(child | (type == T_ARRAY ? ARRAY_BIT : 0))));
            role = child;
            if (type == T_ARRAY) { kc = child == R_TOPARR ? K_ELEM : K_NONE; continue; }
            goto member;
        }
        if (type == T_STRING) {
            int escapes;
            CHECK(scan_string(s, &escapes));
            if (kc == K_FIELD) CHECK(field(s, start, escapes));
            else if (kc == K_KEY && role == R_META) {
                s->meta_key_escaped = escapes != 0;
                s->meta_key_start = start + 1;
                s->meta_key_end = s->i - 1;
            }
        } else if (ch == '-' || (ch >= '0' && ch <= '9')) CHECK(scan_number(s));
        else if (ch == 't') CHECK(scan_literal(s, "true", 4));
        else if (ch == 'f') CHECK(scan_literal(s, "false", 5));
        else if (ch == 'n') CHECK(scan_literal(s, "null", 4));
        else return fail(s, "unexpected character", start);
    after_value:
        for (;;) {
            if (s->depth == 0) return OK;
            unsigned char frame = s->stack[s->depth - 1];
            int is_array = frame & ARRAY_BIT;
            skip_ws(s);
            if (s->i >= s->n) return fail(s, "unexpected end", s->i);
            unsigned char c = b[s->i];
            if (c == ',') {
                s->i++;
                role = frame & ~ARRAY_BIT;
                if (is_array) { kc = role == R_TOPARR ? K_ELEM : K_NONE; break; }
                goto member;
            }
            if (c != (is_array ? ']' : '}'))
                return fail(s, "expected ',' or a closing bracket", s->i);
            s->i++;
            s->depth--;
        }
        continue;
    member: {
            /* a key and its colon, in an object of `role` */
            skip_ws(s);
            if (s->i >= s->n || b[s->i] != '"') return fail(s, "a key was expected", s->i);
            Py_ssize_t kstart = s->i;
            int escapes;
            CHECK(scan_string(s, &escapes));
            kc = K_NONE;
            if (role == R_MAP) kc = K_FIELD;
            else if (role == R_TOP || role == R_META || role == R_RECORD) {
                char name[24];
                Py_ssize_t len = small_key(b + kstart + 1, s->i - kstart - 2, escapes, name);
                kc = classify(role, name, len);
                if (role == R_TOP) CHECK(note_top_key(s, kstart, s->i, escapes));
            }
            skip_ws(s);
            if (s->i >= s->n || b[s->i] != ':') return fail(s, "expected ':'", s->i);
            s->i++;
        }
    }
}

/* Does the last top-level meta (an object) name a top-level key in "key"? If that cannot be
 * told here, or it may need filling in, the Python path decides. */
static int meta_key_is_fine(Scanner *s) {
    if (s->meta_type != T_OBJECT) return 1;
    if (s->meta_key_type != T_STRING || s->meta_key_escaped) return 0;
    Py_ssize_t len = s->meta_key_end - s->meta_key_start;
    for (Py_ssize_t k = 0; k < s->ntop; k++) {
        KeyInfo *key = &s->top[k];
        if (!key->escaped && key->end - key->start == len &&
            memcmp(s->b + key->start, s->b + s->meta_key_start, (size_t)len) == 0)
            return 1;
    }
    return 0;
}

static PyObject *NOT_OBJECT, *NEEDS_PYTHON;

static PyObject *Rewriter_rewrite(RewriterObject *self, PyObject *args) {
    Py_buffer body, public;
    if (!PyArg_ParseTuple(args, "y*y*:rewrite", &body, &public)) return NULL;
    Scanner s;
    memset(&s, 0, sizeof s);
    s.cfg = self;
    s.b = body.buf;
    s.n = body.len;
    s.public = (Str){public.buf, public.len};
    int rc;
    if (s.n > RELEASE_GIL_ABOVE) {
        Py_BEGIN_ALLOW_THREADS
        rc = walk(&s);
        Py_END_ALLOW_THREADS
    } else {
        rc = walk(&s);
    }
    if (rc == OK) {
        skip_ws(&s);
        if (s.i != s.n) rc = fail(&s, "extra data after the JSON value", s.i);
    }
    PyObject *result = NULL;
    if (rc == ERR_NOMEM) PyErr_NoMemory();
    else if (rc == ERR_INVALID)
        PyErr_Format(PyExc_ValueError, "invalid JSON: %s at byte %zd", s.err, s.errpos);
    else if (rc == HAND_OVER) result = Py_NewRef(NEEDS_PYTHON);
    else if (s.root_type != T_OBJECT) result = Py_NewRef(NOT_OBJECT);
    else if (!meta_key_is_fine(&s)) result = Py_NewRef(NEEDS_PYTHON);
    else if (s.copied == 0) result = Py_NewRef(Py_None);
    else {
        result = PyBytes_FromStringAndSize(NULL, s.olen + (s.n - s.copied));
        if (result != NULL) {
            char *dst = PyBytes_AS_STRING(result);
            memcpy(dst, s.out, (size_t)s.olen);
            memcpy(dst + s.olen, s.b + s.copied, (size_t)(s.n - s.copied));
        }
    }
    PyMem_RawFree(s.out);
    PyMem_RawFree(s.stack);
    PyMem_RawFree(s.top);
    PyMem_RawFree(s.reach);
    PyMem_RawFree(s.next);
    PyBuffer_Release(&body);
    PyBuffer_Release(&public);
    return result;
}

/* ---- the Rewriter type ---- */

static int Rewriter_init(RewriterObject *self, PyObject *args, PyObject *kwds) {
    PyObject *prefixes, *target, *source, *templates;
    static char *names[] = {"prefixes", "swap_target", "swap_source", "templates", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OOO!:Rewriter", names, &PyTuple_Type,
                                     &prefixes, &target, &source, &PyTuple_Type, &templates))
        return -1;
    if (self->keep != NULL) {
        PyErr_SetString(PyExc_TypeError, "Rewriter is initialised once");
        return -1;
    }
    if ((target == Py_None) != (source == Py_None) ||
        (target != Py_None && (!PyBytes_Check(target) || !PyBytes_Check(source)))) {
        PyErr_SetString(PyExc_TypeError, "swap_target and swap_source: both bytes or both None");
        return -1;
    }
    self->keep = PyTuple_Pack(4, prefixes, target, source, templates);
    if (self->keep == NULL) return -1;
    Py_ssize_t np = PyTuple_GET_SIZE(prefixes);
    self->prefixes = PyMem_Calloc((size_t)np + 1, sizeof(Str));
    if (self->prefixes == NULL) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t k = 0; k < np; k++) {
        PyObject *item = PyTuple_GET_ITEM(prefixes, k);
        if (!PyBytes_Check(item) || PyBytes_GET_SIZE(item) == 0) {
            PyErr_SetString(PyExc_TypeError, "prefixes: non-empty bytes");
            return -1;
        }
        self->prefixes[k] = (Str){(const unsigned char *)PyBytes_AS_STRING(item),
                                  PyBytes_GET_SIZE(item)};
    }
    self->nprefixes = np;
    if (target != Py_None) {
        self->has_swap = 1;
        self->swap_target = (Str){(const unsigned char *)PyBytes_AS_STRING(target),
                                  PyBytes_GET_SIZE(target)};
        self->swap_source = (Str){(const unsigned char *)PyBytes_AS_STRING(source),
                                  PyBytes_GET_SIZE(source)};
    }
    Py_ssize_t nt = PyTuple_GET_SIZE(templates), total = 0;
    for (Py_ssize_t t = 0; t < nt; t++) {
        PyObject *tpl = PyTuple_GET_ITEM(templates, t);
        if (!PyTuple_Check(tpl)) {
            PyErr_SetString(PyExc_TypeError, "templates: tuples of bytes or None");
            return -1;
        }
        total += PyTuple_GET_SIZE(tpl);
    }
    self->tpl_start = PyMem_Calloc((size_t)nt + 1, sizeof(Py_ssize_t));
    self->pieces = PyMem_Calloc((size_t)total + 1, sizeof(Str));
    self->greedy = PyMem_Calloc((size_t)nt + 1, 1);
    if (self->tpl_start == NULL || self->pieces == NULL || self->greedy == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t at = 0;
    for (Py_ssize_t t = 0; t < nt; t++) {
        PyObject *tpl = PyTuple_GET_ITEM(templates, t);
        self->tpl_start[t] = at;
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(tpl); k++) {
            PyObject *piece = PyTuple_GET_ITEM(tpl, k);
            if (piece == Py_None) self->pieces[at++] = (Str){NULL, 0};
            else if (PyBytes_Check(piece) && PyBytes_GET_SIZE(piece) > 0)
                self->pieces[at++] = (Str){(const unsigned char *)PyBytes_AS_STRING(piece),
                                           PyBytes_GET_SIZE(piece)};
            else {
                PyErr_SetString(PyExc_TypeError, "templates: tuples of bytes or None");
                return -1;
            }
        }
    }
    self->tpl_start[nt] = at;
    self->ntemplates = nt;
    self->all_greedy = 1;
    for (Py_ssize_t t = 0; t < nt; t++) {
        int greedy = 1;
        for (Py_ssize_t k = self->tpl_start[t]; k < self->tpl_start[t + 1]; k++) {
            if (self->pieces[k].p != NULL) continue;
            if (k + 1 == self->tpl_start[t + 1]) continue; /* runs to the end */
            Str after = self->pieces[k + 1];
            if (after.p == NULL || SEGMENT_CHAR[after.p[0]] || after.p[0] == '%') greedy = 0;
        }
        self->greedy[t] = (unsigned char)greedy;
        self->all_greedy &= greedy;
    }
    return 0;
}

static void Rewriter_dealloc(RewriterObject *self) {
    PyMem_Free(self->prefixes);
    PyMem_Free(self->tpl_start);
    PyMem_Free(self->pieces);
    PyMem_Free(self->greedy);
    Py_XDECREF(self->keep);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Rewriter_rewrite_checked(RewriterObject *self, PyObject *args) {
    if (self->keep == NULL) {
        PyErr_SetString(PyExc_TypeError, "Rewriter is not initialised");
        return NULL;
    }
    return Rewriter_rewrite(self, args);
}

static PyMethodDef Rewriter_methods[] = {
    {"rewrite", (PyCFunction)Rewriter_rewrite_checked, METH_VARARGS,
     "rewrite(body, public) -> bytes | None | NOT_OBJECT | NEEDS_PYTHON"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RewriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gateway.rewrite._rewrite_accel.Rewriter",
    .tp_basicsize = sizeof(RewriterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The URL-field rewrite of one LinkRewriter, compiled.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Rewriter_init,
    .tp_dealloc = (destructor)Rewriter_dealloc,
    .tp_methods = Rewriter_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "gateway.rewrite._rewrite_accel",
    "Compiled URL-field rewrite of JSON bodies (see gateway/rewrite/response_rewrite.py).", -1, NULL,
};

PyMODINIT_FUNC PyInit__rewrite_accel(void) {
    init_tables();
    if (PyType_Ready(&RewriterType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    NOT_OBJECT = PyLong_FromLong(1);
    NEEDS_PYTHON = PyLong_FromLong(2);
    if (NOT_OBJECT == NULL || NEEDS_PYTHON == NULL ||
        PyModule_AddObjectRef(m, "NOT_OBJECT", NOT_OBJECT) < 0 ||
        PyModule_AddObjectRef(m, "NEEDS_PYTHON", NEEDS_PYTHON) < 0 ||
        PyModule_AddObjectRef(m, "Rewriter", (PyObject *)&RewriterType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
