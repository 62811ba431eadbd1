/* detforge.utils._cstat: stat() or read many paths in one call, without the GIL.
 *
 * The never-stale dataset index cache must stat every image and label file on every load
 * (see detforge/data/cache.py). In Python each os.stat costs a syscall plus about a
 * microsecond of interpreter work under the GIL, so threads cannot overlap them. This
 * function runs the whole batch in C with the GIL released: the caller splits a list into
 * chunks and runs one chunk per thread, and the stats then proceed on every core.
 *
 * Optional: detforge/utils/filestat.py falls back to os.stat when this module is missing
 * (no C compiler at install time). Both give the same numbers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

#if defined(__APPLE__)
#define MTIME_SEC(st) ((st).st_mtimespec.tv_sec)
#define MTIME_NSEC(st) ((st).st_mtimespec.tv_nsec)
#define CTIME_SEC(st) ((st).st_ctimespec.tv_sec)
#define CTIME_NSEC(st) ((st).st_ctimespec.tv_nsec)
#else
#define MTIME_SEC(st) ((st).st_mtim.tv_sec)
#define MTIME_NSEC(st) ((st).st_mtim.tv_nsec)
#define CTIME_SEC(st) ((st).st_ctim.tv_sec)
#define CTIME_NSEC(st) ((st).st_ctim.tv_nsec)
#endif

/* Whether buf is a C-contiguous buffer of at least n int64 items. */
static int is_int64s(const Py_buffer *buf, Py_ssize_t n) {
    return buf->itemsize == 8 && buf->len >= n * (Py_ssize_t)sizeof(int64_t) &&
           PyBuffer_IsContiguous(buf, 'C');
}

/* Whether blob can hold n NUL-terminated paths (its last byte a NUL); sets ValueError if not. */
static int blob_ok(const Py_buffer *blob, Py_ssize_t n) {
    if (n > 0 && (blob->len == 0 || ((const char *)blob->buf)[blob->len - 1] != '\0')) {
        PyErr_SetString(PyExc_ValueError, "blob must end with a NUL byte");
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(stat_paths_doc,
"stat_paths(blob, n, size_out, mtime_out[, ctime_out]) -> int\n"
"\n"
"stat() (following symlinks, like os.stat) each of the n NUL-terminated paths packed\n"
"one after another in the bytes `blob` (os.fsencode'd). Writes st_size into size_out[i]\n"
"and st_mtime in nanoseconds (as os.stat().st_mtime_ns) into mtime_out[i], and, when\n"
"ctime_out is given, st_ctime in nanoseconds (as os.stat().st_ctime_ns) into\n"
"ctime_out[i]: writable C-contiguous int64 buffers of at least n items; -1 into each\n"
"where the path does not exist, cannot be stat-ed or is not a regular file. Returns how\n"
"many were regular files. The GIL is released for the whole batch.");

static PyObject *stat_paths(PyObject *self, PyObject *args) {
    Py_buffer blob, size_buf, mtime_buf;
    Py_buffer ctime_buf = {0}; /* optional: .obj stays NULL when not given */
    Py_ssize_t n;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nw*w*|w*", &blob, &n, &size_buf, &mtime_buf, &ctime_buf)) {
        return NULL;
    }
    PyObject *result = NULL;
    int with_ctime = ctime_buf.obj != NULL;
    if (n < 0 || !is_int64s(&size_buf, n) || !is_int64s(&mtime_buf, n) ||
        (with_ctime && !is_int64s(&ctime_buf, n))) {
        PyErr_SetString(PyExc_ValueError,
                        "size_out, mtime_out and ctime_out must be contiguous int64 buffers of "
                        "n items");
        goto done;
    }
    if (!blob_ok(&blob, n)) goto done;
    const char *p = (const char *)blob.buf;
    const char *end = p + blob.len;
    int64_t *size = (int64_t *)size_buf.buf;
    int64_t *mtime = (int64_t *)mtime_buf.buf;
    int64_t *ctime_ns = with_ctime ? (int64_t *)ctime_buf.buf : NULL;
    Py_ssize_t i = 0, found = 0;
    Py_BEGIN_ALLOW_THREADS
    struct stat st;
    for (; i < n && p < end; i++) {
        size_t len = strlen(p); /* stops at the NUL that ends this path */
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            size[i] = (int64_t)st.st_size;
            mtime[i] = (int64_t)MTIME_SEC(st) * 1000000000LL + (int64_t)MTIME_NSEC(st);
            if (ctime_ns) {
                ctime_ns[i] = (int64_t)CTIME_SEC(st) * 1000000000LL + (int64_t)CTIME_NSEC(st);
            }
            found++;
        } else {
            size[i] = -1;
            mtime[i] = -1;
            if (ctime_ns) ctime_ns[i] = -1;
        }
        p += len + 1;
    }
    Py_END_ALLOW_THREADS
    if (i != n) {
        PyErr_Format(PyExc_ValueError, "blob holds %zd paths, not %zd", i, n);
        goto done;
    }
    result = PyLong_FromSsize_t(found);
done:
    PyBuffer_Release(&blob);
    PyBuffer_Release(&size_buf);
    PyBuffer_Release(&mtime_buf);
    if (with_ctime) PyBuffer_Release(&ctime_buf);
    return result;
}

PyDoc_STRVAR(read_paths_doc,
"read_paths(blob, n, starts, caps, out, lengths_out) -> None\n"
"\n"
"Read each of the n NUL-terminated paths packed in `blob` into the writable buffer `out`:\n"
"file i goes to out[starts[i] : starts[i] + caps[i]] (int64 buffers of n items), at most\n"
"caps[i] bytes. lengths_out[i] (int64) receives the bytes read, or -errno where the file\n"
"could not be opened or read. A file that fills its whole slot may be longer than caps[i]:\n"
"the caller reads those again. The GIL is released for the whole batch.");

static PyObject *read_paths(PyObject *self, PyObject *args) {
    Py_buffer blob, starts_buf, caps_buf, out_buf, len_buf;
    Py_ssize_t n;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*ny*y*w*w*", &blob, &n, &starts_buf, &caps_buf, &out_buf,
                          &len_buf)) {
        return NULL;
    }
    PyObject *result = NULL;
    if (n < 0 || !is_int64s(&starts_buf, n) || !is_int64s(&caps_buf, n) ||
        !is_int64s(&len_buf, n) || !PyBuffer_IsContiguous(&out_buf, 'C')) {
        PyErr_SetString(PyExc_ValueError,
                        "starts, caps and lengths_out must be contiguous int64 buffers of n items");
        goto done;
    }
    const int64_t *starts = (const int64_t *)starts_buf.buf;
    const int64_t *caps = (const int64_t *)caps_buf.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (starts[i] < 0 || caps[i] < 0 || starts[i] + caps[i] > (int64_t)out_buf.len) {
            PyErr_Format(PyExc_ValueError, "slot %zd lies outside the output buffer", i);
            goto done;
        }
    }
    if (!blob_ok(&blob, n)) goto done;
    const char *p = (const char *)blob.buf;
    const char *end = p + blob.len;
    char *out = (char *)out_buf.buf;
    int64_t *lengths = (int64_t *)len_buf.buf;
    Py_ssize_t i = 0;
    Py_BEGIN_ALLOW_THREADS
    for (; i < n && p < end; i++) {
        size_t len = strlen(p);
        /* O_NONBLOCK: a FIFO put where a file was must not hang the batch */
        int fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) {
            lengths[i] = -(int64_t)errno;
        } else {
            int64_t got = 0;
            while (got < caps[i]) {
                ssize_t r = read(fd, out + starts[i] + got, (size_t)(caps[i] - got));
                if (r < 0) {
                    if (errno == EINTR) continue;
                    got = -(int64_t)errno;
                    break;
                }
                if (r == 0) break;
                got += r;
            }
            lengths[i] = got;
            close(fd);
        }
        p += len + 1;
    }
    Py_END_ALLOW_THREADS
    if (i != n) {
        PyErr_Format(PyExc_ValueError, "blob holds %zd paths, not %zd", i, n);
        goto done;
    }
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&blob);
    PyBuffer_Release(&starts_buf);
    PyBuffer_Release(&caps_buf);
    PyBuffer_Release(&out_buf);
    PyBuffer_Release(&len_buf);
    return result;
}

static PyMethodDef methods[] = {
    {"stat_paths", stat_paths, METH_VARARGS, stat_paths_doc},
    {"read_paths", read_paths, METH_VARARGS, read_paths_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cstat", "Batch stat() and read() without the GIL (see _cstat.c).", 0, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__cstat(void) { return PyModuleDef_Init(&module); }
