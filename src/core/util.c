/*
 * util.c: checked file I/O, path confinement and the string buffer (see util.h).
 */
#define _GNU_SOURCE
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *aim_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy) memcpy(copy, s, n);
    return copy;
}

aim_status aim_file_read(const char *path, size_t max_size, uint8_t **data, size_t *size) {
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return aim_error(AIM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return aim_error(AIM_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return aim_error(AIM_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_size) {
        close(fd);
        return aim_error(AIM_ERR_LIMIT, "%s: file of %lld bytes is larger than the limit of %zu",
                         path, (long long)st.st_size, max_size);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return aim_error(AIM_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n + 1);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int err = errno;
            free(buf);
            close(fd);
            return aim_error(AIM_ERR_IO, "%s: read failed: %s", path,
                             r == 0 ? "file shrank while reading" : strerror(err));
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *data = buf;
    *size = n;
    return AIM_OK;
}

static aim_status write_all(int fd, const char *path, const void *data, size_t size) {
    const uint8_t *p = data;
    while (size > 0) {
        ssize_t w = write(fd, p, size);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return aim_error(AIM_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        p += w;
        size -= (size_t)w;
    }
    return AIM_OK;
}

aim_status aim_file_write_atomic(const char *path, const void *data, size_t size) {
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) return aim_error(AIM_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        aim_status st = aim_error(AIM_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        free(tmp);
        return st;
    }
    aim_status st = write_all(fd, path, data, size);
    if (st == AIM_OK && fsync(fd) != 0)
        st = aim_error(AIM_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && st == AIM_OK)
        st = aim_error(AIM_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    if (st == AIM_OK && rename(tmp, path) != 0)
        st = aim_error(AIM_ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
    if (st != AIM_OK) unlink(tmp);
    free(tmp);
    return st;
}

aim_status aim_dir_create(const char *path) {
    char *copy = aim_strdup(path);
    if (!copy) return aim_error(AIM_ERR_NOMEM, "out of memory");
    aim_status st = AIM_OK;
    for (char *p = copy + 1; st == AIM_OK; p++) {
        bool end = *p == '\0';
        if (*p != '/' && !end) continue;
        *p = '\0';
        struct stat sb;
        if (mkdir(copy, 0755) != 0 &&
            (errno != EEXIST || stat(copy, &sb) != 0 || !S_ISDIR(sb.st_mode)))
            st = aim_error(AIM_ERR_IO, "cannot create folder %s: %s", copy,
                           errno == EEXIST ? "a file of that name exists" : strerror(errno));
        if (end) break;
        *p = '/';
    }
    free(copy);
    return st;
}

char *aim_path_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return aim_strdup(".");
    if (slash == path) return aim_strdup("/");
    size_t n = (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (!dir) return NULL;
    memcpy(dir, path, n);
    dir[n] = 0;
    return dir;
}

char *aim_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *out = malloc(a + b + 2);
    if (!out) return NULL;
    memcpy(out, dir, a);
    out[a] = '/';
    memcpy(out + a + 1, name, b + 1);
    return out;
}

static bool has_dotdot_component(const char *p) {
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return true;
        if (!end) break;
        p = end + 1;
    }
    return false;
}

aim_status aim_path_confined(const char *dir, const char *relative) {
    if (relative[0] == '\0') return aim_error(AIM_ERR_SECURITY, "empty file name");
    if (relative[0] == '/')
        return aim_error(AIM_ERR_SECURITY,
                         "'%s' is an absolute path; only names inside the "
                         "model's folder are allowed",
                         relative);
    if (has_dotdot_component(relative))
        return aim_error(AIM_ERR_SECURITY,
                         "'%s' contains '..'; only names inside the model's "
                         "folder are allowed",
                         relative);
    char *joined = aim_path_join(dir, relative);
    if (!joined) return aim_error(AIM_ERR_NOMEM, "out of memory");
    char real_dir[PATH_MAX], real_file[PATH_MAX];
    aim_status st = AIM_OK;
    if (!realpath(dir, real_dir)) {
        st = aim_error(AIM_ERR_IO, "%s: %s", dir, strerror(errno));
    } else if (realpath(joined, real_file)) {
        size_t n = strlen(real_dir);
        bool inside = strncmp(real_file, real_dir, n) == 0 &&
                      (real_file[n] == '/' || (n == 1 && real_dir[0] == '/'));
        if (!inside)
            st = aim_error(AIM_ERR_SECURITY, "'%s' resolves to '%s', outside the model's folder",
                           relative, real_file);
    }
    free(joined);
    return st;
}

void aim_strbuf_init(aim_strbuf *sb) {
    memset(sb, 0, sizeof *sb);
}

void aim_strbuf_free(aim_strbuf *sb) {
    free(sb->data);
    aim_strbuf_init(sb);
}

static bool strbuf_reserve(aim_strbuf *sb, size_t extra) {
    size_t need;
    if (sb->failed || !aim_add_size(sb->len, extra + 1, &need)) return false;
    if (need <= sb->cap) return true;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < need) {
        if (!aim_mul_size(cap, 2, &cap)) return false;
    }
    char *p = realloc(sb->data, cap);
    if (!p) return false;
    sb->data = p;
    sb->cap = cap;
    return true;
}

void aim_strbuf_append(aim_strbuf *sb, const char *text, size_t len) {
    if (!strbuf_reserve(sb, len)) {
        sb->failed = true;
        return;
    }
    memcpy(sb->data + sb->len, text, len);
    sb->len += len;
    sb->data[sb->len] = 0;
}

void aim_strbuf_puts(aim_strbuf *sb, const char *text) {
    aim_strbuf_append(sb, text, strlen(text));
}

void aim_strbuf_printf(aim_strbuf *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !strbuf_reserve(sb, (size_t)n)) {
        sb->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

char *aim_strbuf_take(aim_strbuf *sb) {
    char *out = NULL;
    if (!sb->failed)
        out = sb->data ? sb->data : aim_strdup("");
    else
        free(sb->data);
    aim_strbuf_init(sb);
    return out;
}
