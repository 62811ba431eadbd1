/* detforge.models.darknet._resize: Darknet's input resize in C, without the GIL.
 *
 * `darknet detector test`/`map` feed the network resize_image(im, w, h) (src/image.c): the
 * 8-bit image divided by 255, then a separable bilinear resize, first along rows into a
 * (src_h, w) "part" image, then along columns, with sample positions c * (src_w - 1) / (w - 1)
 * (the first and last pixels map onto each other). This file repeats that arithmetic in the
 * same float32 operations, in the same order, so its output equals Darknet's bit for bit,
 * including one quirk: the last output row takes only (1 - dy) * part[iy], so where
 * (h - 1) * h_scale rounds below src_h - 1 that row is nearly black (e.g. 440 rows -> 416).
 *
 * In PyTorch the same resize (one thread, uint8 HWC -> float CHW) takes about 1.8-2.2 ms for a
 * 600x512 photo at 416x416; here about 0.7 ms, and the GIL is released, so concurrent CPU
 * streams resize in parallel.
 *
 * Optional: detforge/models/darknet/preprocess.py falls back to a PyTorch version of the same
 * arithmetic when this module is missing (no C compiler at install time). Both give the same
 * numbers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>

/* Each product and sum rounded on its own, as Darknet's x86 build computes them: no fused
   multiply-add (which aarch64 compilers would otherwise use). */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* One source row resized along its width: out[k * new_w + c], channels k of the HWC row. */
static void resize_row(const uint8_t *row, Py_ssize_t src_w, Py_ssize_t channels,
                       Py_ssize_t new_w, const Py_ssize_t *ix, const float *dx,
                       const float *lut, float *out) {
    Py_ssize_t last = new_w - 1; /* the last column (every column when src_w == 1) */
    if (src_w == 1) last = 0;
    if (channels == 3) { /* RGB: the three planes in one pass over the row */
        float *o0 = out, *o1 = out + new_w, *o2 = out + 2 * new_w;
        for (Py_ssize_t c = 0; c < last; ++c) {
            const uint8_t *p = row + ix[c] * 3;
            float d = dx[c], e = 1 - d;
            o0[c] = e * lut[p[0]] + d * lut[p[3]];
            o1[c] = e * lut[p[1]] + d * lut[p[4]];
            o2[c] = e * lut[p[2]] + d * lut[p[5]];
        }
    } else {
        for (Py_ssize_t k = 0; k < channels; ++k) {
            float *o = out + k * new_w;
            for (Py_ssize_t c = 0; c < last; ++c) {
                float d = dx[c];
                o[c] = (1 - d) * lut[row[ix[c] * channels + k]] +
                       d * lut[row[(ix[c] + 1) * channels + k]];
            }
        }
    }
    for (Py_ssize_t k = 0; k < channels; ++k) {
        for (Py_ssize_t c = last; c < new_w; ++c) {
            out[k * new_w + c] = lut[row[(src_w - 1) * channels + k]];
        }
    }
}

/* The resize proper, with the GIL released: rows of the resized image are written to
   dst[k, y0 + r, x0 + c]. Returns 0, or -1 when out of memory. */
static int resize(const uint8_t *src, Py_ssize_t src_h, Py_ssize_t src_w, Py_ssize_t channels,
                  float *dst, Py_ssize_t net_h, Py_ssize_t net_w, Py_ssize_t x0, Py_ssize_t y0,
                  Py_ssize_t new_w, Py_ssize_t new_h) {
    float lut[256];
    for (int i = 0; i < 256; ++i) lut[i] = (float)i / 255.f;
    Py_ssize_t *ix = malloc(sizeof(Py_ssize_t) * (size_t)new_w);
    float *dx = malloc(sizeof(float) * (size_t)new_w);
    float *rows = malloc(sizeof(float) * (size_t)(2 * channels * new_w));
    if (!ix || !dx || !rows) {
        free(ix);
        free(dx);
        free(rows);
        return -1;
    }
    float w_scale = new_w > 1 ? (float)(src_w - 1) / (float)(new_w - 1) : 0.f;
    float h_scale = new_h > 1 ? (float)(src_h - 1) / (float)(new_h - 1) : 0.f;
    for (Py_ssize_t c = 0; c < new_w; ++c) {
        float sx = (float)c * w_scale;
        Py_ssize_t i = (Py_ssize_t)sx;
        dx[c] = sx - (float)i;
        ix[c] = i;
        if (i >= src_w - 1) { /* only by rounding: the last pixel, and ix + 1 in bounds */
            ix[c] = src_w > 1 ? src_w - 2 : 0;
            dx[c] = 1.f;
        }
    }
    Py_ssize_t tag[2] = {-1, -1}; /* the source row each buffer of `rows` holds */
    Py_ssize_t plane = net_h * net_w;
    for (Py_ssize_t r = 0; r < new_h; ++r) {
        float sy = (float)r * h_scale;
        Py_ssize_t iy = (Py_ssize_t)sy;
        if (iy > src_h - 1) iy = src_h - 1; /* only by rounding: Darknet would read past */
        float dy = sy - (float)iy;
        int second = r != new_h - 1 && src_h != 1;
        Py_ssize_t need[2] = {iy, second && iy + 1 < src_h ? iy + 1 : iy};
        float *part[2];
        for (int j = 0; j < 2; ++j) {
            int slot = tag[0] == need[j] ? 0 : (tag[1] == need[j] ? 1 : -1);
            if (slot < 0) { /* replace the buffer the other needed row is not in */
                slot = (j == 1 && tag[0] == need[0]) ? 1 : 0;
                resize_row(src + need[j] * src_w * channels, src_w, channels, new_w, ix, dx,
                           lut, rows + slot * channels * new_w);
                tag[slot] = need[j];
            }
            part[j] = rows + slot * channels * new_w;
        }
        for (Py_ssize_t k = 0; k < channels; ++k) {
            float *o = dst + k * plane + (y0 + r) * net_w + x0;
            const float *p0 = part[0] + k * new_w, *p1 = part[1] + k * new_w;
            if (second) {
                for (Py_ssize_t c = 0; c < new_w; ++c) {
                    float v = (1 - dy) * p0[c];
                    o[c] = v + dy * p1[c];
                }
            } else {
                for (Py_ssize_t c = 0; c < new_w; ++c) o[c] = (1 - dy) * p0[c];
            }
        }
    }
    free(ix);
    free(dx);
    free(rows);
    return 0;
}

PyDoc_STRVAR(resize_into_doc,
"resize_into(src, src_h, src_w, channels, dst, net_h, net_w, x0, y0, new_w, new_h) -> None\n"
"\n"
"Darknet's resize_image of the uint8 image `src` (a C-contiguous buffer of src_h x src_w x\n"
"channels bytes, HWC) to new_w x new_h, divided by 255, written into the float32 buffer\n"
"`dst` (C-contiguous, channels x net_h x net_w) at columns x0.. and rows y0..; the rest of\n"
"dst is left as it is (a letterbox canvas). The GIL is released while it runs.");

static PyObject *resize_into(PyObject *self, PyObject *args) {
    Py_buffer src, dst;
    Py_ssize_t src_h, src_w, channels, net_h, net_w, x0, y0, new_w, new_h;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnw*nnnnnn", &src, &src_h, &src_w, &channels, &dst, &net_h,
                          &net_w, &x0, &y0, &new_w, &new_h)) {
        return NULL;
    }
    PyObject *result = NULL;
    if (src_h < 1 || src_w < 1 || channels < 1 || new_w < 1 || new_h < 1 || x0 < 0 ||
        y0 < 0 || x0 + new_w > net_w || y0 + new_h > net_h) {
        PyErr_SetString(PyExc_ValueError, "sizes out of range");
        goto done;
    }
    if (!PyBuffer_IsContiguous(&src, 'C') || src.len != src_h * src_w * channels) {
        PyErr_SetString(PyExc_ValueError, "src must be a contiguous src_h x src_w x channels "
                                          "uint8 buffer");
        goto done;
    }
    if (!PyBuffer_IsContiguous(&dst, 'C') || dst.itemsize != 4 ||
        dst.len != channels * net_h * net_w * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "dst must be a contiguous channels x net_h x net_w "
                                          "float32 buffer");
        goto done;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = resize((const uint8_t *)src.buf, src_h, src_w, channels, (float *)dst.buf, net_h, net_w,
                x0, y0, new_w, new_h);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    return result;
}

static PyMethodDef methods[] = {
    {"resize_into", resize_into, METH_VARARGS, resize_into_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_resize", "Darknet's input resize (see the file's comment).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__resize(void) { return PyModule_Create(&module); }
