/*
 * archive.c: safe extraction of zip and (compressed) tar archives with libarchive into a fresh
 * temporary directory. Every entry name is checked and normalised before anything touches the
 * disk, and every file is created relative to a directory descriptor with O_NOFOLLOW, so the
 * archive can only ever write below the directory it was given. See archive.h for the rules.
 */
#include "compile/archive.h"

#include "core/util.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_BUFFER    (64 * 1024)
#define MAX_COMPONENT  255 /* NAME_MAX on Linux */
#define MAX_TREE_DEPTH 4096

/* What one extraction carries along. */
typedef struct {
    struct archive *ar;
    int root; /* descriptor of the temporary directory */
    aim_archive_limits limits;
    aim_archive *out;
    char *buffer; /* COPY_BUFFER bytes */
} extractor;

void aim_archive_limits_default(aim_archive_limits *l) {
    l->max_entries = AIM_ARCHIVE_MAX_ENTRIES;
    l->max_total = AIM_ARCHIVE_MAX_TOTAL;
    l->max_file = AIM_ARCHIVE_MAX_FILE_BYTES;
}

/* ---- Sniffing ------------------------------------------------------------------------------ */

static bool starts_with(const unsigned char *b, size_t n, const char *magic, size_t len) {
    return n >= len && memcmp(b, magic, len) == 0;
}

bool aim_archive_sniff(const char *path) {
    unsigned char b[512];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = read(fd, b, sizeof b);
    close(fd);
    if (n <= 0) return false;
    size_t len = (size_t)n;
    return starts_with(b, len, "PK\x03\x04", 4) || starts_with(b, len, "PK\x05\x06", 4) ||
           starts_with(b, len, "\x1f\x8b", 2) || starts_with(b, len, "BZh", 3) ||
           starts_with(b, len,
                       "\xfd"
                       "7zXZ\x00",
                       6) ||
           (len >= 262 && memcmp(b + 257, "ustar", 5) == 0);
}

/* ---- Names --------------------------------------------------------------------------------- */

/* Length of the UTF-8 sequence at s (1..4), or 0 when it is not valid UTF-8 (overlong forms,
 * surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_sequence(const unsigned char *s) {
    if (s[0] < 0x80) return 1;
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (len == 0 || s[0] > 0xf4) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (len == 3 && s[0] == 0xe0 && s[1] < 0xa0) return 0;  /* overlong */
    if (len == 3 && s[0] == 0xed && s[1] >= 0xa0) return 0; /* surrogate */
    if (len == 4 && s[0] == 0xf0 && s[1] < 0x90) return 0;  /* overlong */
    if (len == 4 && s[0] == 0xf4 && s[1] >= 0x90) return 0; /* above U+10FFFF */
    return len;
}

/* Why `name` is not acceptable as text, or NULL. */
static const char *name_text_problem(const char *name) {
    size_t n = strlen(name);
    if (n == 0) return "an empty name";
    if (n > AIM_ARCHIVE_MAX_NAME) return "a name longer than 1024 bytes";
    for (const unsigned char *p = (const unsigned char *)name; *p;) {
        if (*p < 0x20 || *p == 0x7f) return "a control character in its name";
        if (*p == '\\') return "a backslash in its name (only '/' separates folders)";
        size_t len = utf8_sequence(p);
        if (len == 0) return "a name that is not valid UTF-8";
        p += len;
    }
    return NULL;
}

/* Checks `name` and writes its normalised form (no "." or empty components, no trailing '/')
 * into clean (AIM_ARCHIVE_MAX_NAME + 1 bytes). Returns NULL or the reason for refusing it. */
static const char *normalise_name(const char *name, char *clean) {
    const char *why = name_text_problem(name);
    if (why) return why;
    if (name[0] == '/') return "an absolute path";
    size_t len = 0;
    for (const char *p = name; *p;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return "a '..' component";
        if (n > MAX_COMPONENT) return "a path component longer than 255 bytes";
        if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (len > 0) clean[len++] = '/';
            memcpy(clean + len, p, n);
            len += n;
        }
        p += n + (end ? 1 : 0);
    }
    clean[len] = '\0';
    return NULL;
}

/* ---- Directories --------------------------------------------------------------------------- */

/* Opens (creating it when absent) the directory `comp` inside `dirfd`, never through a link. */
static aim_status open_subdir(int dirfd, const char *comp, const char *entry, int *out) {
    *out = -1;
    if (mkdirat(dirfd, comp, 0755) != 0 && errno != EEXIST)
        return aim_error(AIM_ERR_IO, "archive entry '%s': cannot create folder '%s': %s", entry,
                         comp, strerror(errno));
    *out = openat(dirfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (*out < 0)
        return aim_error(AIM_ERR_SECURITY, "archive entry '%s': '%s' is not a folder (%s)", entry,
                         comp, strerror(errno));
    return AIM_OK;
}

/* Opens the folder that will hold the last component of `clean` (creating the folders on the
 * way) into *out (the caller closes it) and points *leaf at that component. */
static aim_status open_parent(int root, char *clean, const char *entry, const char **leaf,
                              int *out) {
    int fd = dup(root);
    if (fd < 0) return aim_error(AIM_ERR_IO, "archive: dup: %s", strerror(errno));
    char *p = clean;
    for (char *slash = strchr(p, '/'); slash; slash = strchr(p, '/')) {
        *slash = '\0';
        int next;
        aim_status st = open_subdir(fd, p, entry, &next);
        *slash = '/';
        close(fd);
        if (st != AIM_OK) return st;
        fd = next;
        p = slash + 1;
    }
    *leaf = p;
    *out = fd;
    return AIM_OK;
}

static aim_status make_directory(extractor *x, char *clean, const char *entry) {
    if (clean[0] == '\0') return AIM_OK; /* "./" */
    const char *leaf;
    int parent, fd;
    aim_status st = open_parent(x->root, clean, entry, &leaf, &parent);
    if (st != AIM_OK) return st;
    st = open_subdir(parent, leaf, entry, &fd);
    close(parent);
    if (st == AIM_OK) close(fd);
    return st;
}

/* ---- Files --------------------------------------------------------------------------------- */

static aim_status write_all(int fd, const char *data, size_t size, const char *entry) {
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            return aim_error(AIM_ERR_IO, "archive entry '%s': write failed: %s", entry,
                             n < 0 ? strerror(errno) : "no progress");
        data += n;
        size -= (size_t)n;
    }
    return AIM_OK;
}

/* Copies the current entry's data into fd, enforcing the per-file and total limits on the bytes
 * actually produced. */
static aim_status copy_data(extractor *x, int fd, const char *entry) {
    uint64_t written = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(x->ar, x->buffer, COPY_BUFFER);
        if (n == 0) return AIM_OK;
        if (n < 0)
            return aim_error(AIM_ERR_PARSE, "archive entry '%s': damaged or truncated data: %s",
                             entry, archive_error_string(x->ar));
        written += (uint64_t)n;
        if (written > x->limits.max_file)
            return aim_error(AIM_ERR_LIMIT, "archive entry '%s': larger than %llu bytes", entry,
                             (unsigned long long)x->limits.max_file);
        x->out->total_bytes += (uint64_t)n;
        if (x->out->total_bytes > x->limits.max_total)
            return aim_error(AIM_ERR_LIMIT,
                             "archive: more than %llu bytes in total (at entry '%s')",
                             (unsigned long long)x->limits.max_total, entry);
        aim_status st = write_all(fd, x->buffer, (size_t)n, entry);
        if (st != AIM_OK) return st;
    }
}

static aim_status remember_file(aim_archive *a, const char *clean) {
    char *copy = aim_strdup(clean);
    char **grown = copy ? realloc(a->files, (a->file_count + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(copy);
        return aim_error(AIM_ERR_NOMEM, "archive: out of memory");
    }
    a->files = grown;
    a->files[a->file_count++] = copy;
    return AIM_OK;
}

static aim_status make_file(extractor *x, struct archive_entry *e, char *clean, const char *entry) {
    if (clean[0] == '\0')
        return aim_error(AIM_ERR_SECURITY, "archive entry '%s': no file name", entry);
    if (archive_entry_size_is_set(e) && archive_entry_size(e) >= 0 &&
        (uint64_t)archive_entry_size(e) > x->limits.max_file)
        return aim_error(AIM_ERR_LIMIT, "archive entry '%s': declares %lld bytes, more than %llu",
                         entry, (long long)archive_entry_size(e),
                         (unsigned long long)x->limits.max_file);
    const char *leaf;
    int parent;
    aim_status st = open_parent(x->root, clean, entry, &leaf, &parent);
    if (st != AIM_OK) return st;
    int fd = openat(parent, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    int err = errno;
    close(parent);
    if (fd < 0 && err == EEXIST)
        return aim_error(AIM_ERR_SECURITY, "archive entry '%s': a second entry with this name",
                         entry);
    if (fd < 0)
        return aim_error(AIM_ERR_IO, "archive entry '%s': cannot create: %s", entry, strerror(err));
    st = copy_data(x, fd, entry);
    if (close(fd) != 0 && st == AIM_OK)
        st = aim_error(AIM_ERR_IO, "archive entry '%s': close: %s", entry, strerror(errno));
    return st == AIM_OK ? remember_file(x->out, clean) : st;
}

/* ---- Entries ------------------------------------------------------------------------------- */

/* Why an entry of this kind is refused, or NULL for regular files and folders. */
static const char *kind_problem(struct archive_entry *e) {
    if (archive_entry_hardlink(e)) return "is a hard link";
    switch (archive_entry_filetype(e)) {
    case AE_IFREG:
    case AE_IFDIR: return NULL;
    case AE_IFLNK: return "is a symbolic link";
    case AE_IFCHR:
    case AE_IFBLK: return "is a device";
    case AE_IFIFO: return "is a FIFO";
    case AE_IFSOCK: return "is a socket";
    default: return "is not a regular file or folder";
    }
}

static const char *entry_name(struct archive_entry *e) {
    const char *name = archive_entry_pathname_utf8(e);
    return name ? name : archive_entry_pathname(e);
}

static aim_status extract_entry(extractor *x, struct archive_entry *e) {
    const char *name = entry_name(e);
    size_t index = x->out->entry_count;
    if (!name)
        return aim_error(AIM_ERR_SECURITY, "archive entry %zu: its name cannot be read", index);
    if (++x->out->entry_count > x->limits.max_entries)
        return aim_error(AIM_ERR_LIMIT, "archive: more than %zu entries (at '%s')",
                         x->limits.max_entries, name);
    char clean[AIM_ARCHIVE_MAX_NAME + 1];
    const char *why = normalise_name(name, clean);
    if (why) return aim_error(AIM_ERR_SECURITY, "archive entry '%s': refused: %s", name, why);
    why = kind_problem(e);
    if (why) return aim_error(AIM_ERR_SECURITY, "archive entry '%s': refused: it %s", name, why);
    if (archive_entry_filetype(e) == AE_IFDIR) return make_directory(x, clean, name);
    return make_file(x, e, clean, name);
}

static aim_status extract_all(extractor *x, const char *path) {
    char last[AIM_ARCHIVE_MAX_NAME + 1] = "";
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(x->ar, &e);
        if (r == ARCHIVE_EOF) return AIM_OK;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            if (x->out->entry_count == 0)
                return aim_error(AIM_ERR_PARSE,
                                 "%s: cannot read the archive (damaged, truncated, or not a zip "
                                 "or tar archive): %s",
                                 path, archive_error_string(x->ar));
            return aim_error(AIM_ERR_PARSE, "%s: damaged or truncated archive after entry '%s': %s",
                             path, last, archive_error_string(x->ar));
        }
        aim_status st = extract_entry(x, e);
        if (st != AIM_OK) return aim_error_context(st, "%s", path);
        snprintf(last, sizeof last, "%s", entry_name(e));
    }
}

static aim_status open_reader(const char *path, struct archive **out) {
    struct archive *ar = archive_read_new();
    *out = NULL;
    if (!ar) return aim_error(AIM_ERR_NOMEM, "archive: out of memory");
    archive_read_support_filter_gzip(ar);
    archive_read_support_filter_bzip2(ar);
    archive_read_support_filter_xz(ar);
    archive_read_support_format_tar(ar);
    archive_read_support_format_gnutar(ar);
    archive_read_support_format_zip(ar);
    if (archive_read_open_filename(ar, path, 64 * 1024) != ARCHIVE_OK) {
        aim_status st = aim_error(AIM_ERR_PARSE,
                                  "%s: cannot read the archive (damaged, truncated, or not a zip "
                                  "or tar archive): %s",
                                  path, archive_error_string(ar));
        archive_read_free(ar);
        return st;
    }
    *out = ar;
    return AIM_OK;
}

/* ---- Temporary directory ------------------------------------------------------------------- */

static char *make_temp_dir(const char *parent) {
    if (!parent) parent = getenv("TMPDIR");
    if (!parent || !parent[0]) parent = "/tmp";
    char *dir = aim_path_join(parent, "aim-archive-XXXXXX");
    if (!dir) {
        aim_error(AIM_ERR_NOMEM, "archive: out of memory");
        return NULL;
    }
    if (!mkdtemp(dir)) {
        aim_error(AIM_ERR_IO, "cannot create a temporary folder in %s: %s", parent,
                  strerror(errno));
        free(dir);
        return NULL;
    }
    return dir;
}

static aim_status run_extraction(extractor *x, const char *path) {
    aim_status st = open_reader(path, &x->ar);
    if (st != AIM_OK) return st;
    st = extract_all(x, path);
    archive_read_free(x->ar);
    return st;
}

aim_status aim_archive_extract(const char *path, const char *parent,
                               const aim_archive_limits *limits, aim_archive *out) {
    memset(out, 0, sizeof *out);
    extractor x = {.out = out};
    if (limits)
        x.limits = *limits;
    else
        aim_archive_limits_default(&x.limits);
    struct stat st_in;
    if (stat(path, &st_in) != 0) return aim_error(AIM_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st_in.st_mode)) return aim_error(AIM_ERR_INVALID_ARG, "%s: not a file", path);
    out->dir = make_temp_dir(parent);
    if (!out->dir) return AIM_ERR_IO;
    x.root = open(out->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    x.buffer = malloc(COPY_BUFFER);
    aim_status st = x.root < 0  ? aim_error(AIM_ERR_IO, "%s: %s", out->dir, strerror(errno))
                    : !x.buffer ? aim_error(AIM_ERR_NOMEM, "archive: out of memory")
                                : run_extraction(&x, path);
    free(x.buffer);
    if (x.root >= 0) close(x.root);
    if (st != AIM_OK) {
        char *saved = aim_strdup(aim_last_error());
        aim_archive_remove(out);
        aim_error(st, "%s", saved ? saved : "archive extraction failed");
        free(saved);
    }
    return st;
}

/* ---- Cleanup ------------------------------------------------------------------------------- */

void aim_archive_free(aim_archive *a) {
    for (size_t i = 0; i < a->file_count; i++)
        free(a->files[i]);
    free(a->files);
    free(a->dir);
    memset(a, 0, sizeof *a);
}

aim_status aim_archive_remove(aim_archive *a) {
    aim_status st = a->dir ? aim_remove_tree(a->dir) : AIM_OK;
    aim_archive_free(a);
    return st;
}

static aim_status remove_entries(int dirfd, int depth);

/* Removes `name` inside dirfd: a folder recursively, anything else (links included) unlinked. */
static aim_status remove_one(int dirfd, const char *name, int depth) {
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? AIM_OK : aim_error(AIM_ERR_IO, "%s: %s", name, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dirfd, name, 0) == 0 || errno == ENOENT
                   ? AIM_OK
                   : aim_error(AIM_ERR_IO, "cannot remove %s: %s", name, strerror(errno));
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return aim_error(AIM_ERR_IO, "cannot open %s: %s", name, strerror(errno));
    aim_status s = remove_entries(fd, depth + 1); /* closes fd */
    if (s != AIM_OK) return s;
    if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
        return aim_error(AIM_ERR_IO, "cannot remove folder %s: %s", name, strerror(errno));
    return AIM_OK;
}

/* One pass over the folder: removes every entry; *removed counts them. */
static aim_status remove_pass(DIR *d, int depth, size_t *removed) {
    *removed = 0;
    rewinddir(d);
    for (struct dirent *de = readdir(d); de; de = readdir(d)) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        aim_status st = remove_one(dirfd(d), de->d_name, depth);
        if (st != AIM_OK) return st;
        (*removed)++;
    }
    return AIM_OK;
}

/* Removes everything inside the folder open as fd, and closes fd. Passes repeat until one finds
 * nothing, since entries removed while listing may hide others from the same listing. */
static aim_status remove_entries(int fd, int depth) {
    if (depth > MAX_TREE_DEPTH) {
        close(fd);
        return aim_error(AIM_ERR_LIMIT, "folder tree deeper than %d levels", MAX_TREE_DEPTH);
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return aim_error(AIM_ERR_IO, "cannot list a folder: %s", strerror(errno));
    }
    size_t removed = 0;
    aim_status st;
    do
        st = remove_pass(d, depth, &removed);
    while (st == AIM_OK && removed > 0);
    closedir(d);
    return st;
}

aim_status aim_remove_tree(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return AIM_OK;
        return aim_error(AIM_ERR_IO, "cannot open %s: %s", dir, strerror(errno));
    }
    aim_status st = remove_entries(fd, 0);
    if (st == AIM_OK && rmdir(dir) != 0)
        return aim_error(AIM_ERR_IO, "cannot remove %s: %s", dir, strerror(errno));
    return st == AIM_OK ? AIM_OK : aim_error_context(st, "removing %s", dir);
}
