/*
 * archive.h: safe extraction of an untrusted archive (zip, tar, tar.gz/.bz2/.xz) into a fresh
 * temporary directory, for the OAAX toolchain's input (a model, a JSON config and calibration
 * images).
 *
 *     aim_archive a;
 *     if (aim_archive_extract("in.tar.gz", NULL, NULL, &a) != AIM_OK) puts(aim_last_error());
 *     for (size_t i = 0; i < a.file_count; i++) ... a.dir + "/" + a.files[i] ...
 *     aim_archive_remove(&a);                     // deletes the directory, frees the lists
 *
 * Refused (AIM_ERR_SECURITY or AIM_ERR_LIMIT, the message names the entry): absolute names,
 * `..` components, names that are empty, not UTF-8, longer than AIM_ARCHIVE_MAX_NAME bytes or
 * holding control characters or backslashes; symbolic links, hard links, devices, FIFOs and
 * sockets; a second entry with the same name; more entries, more bytes in one file or more bytes
 * in total than the limits allow (counted on the data actually written, so a lying size header
 * does not help). A damaged or truncated archive is AIM_ERR_PARSE. On any failure the temporary
 * directory is removed again, so nothing is left behind.
 *
 * Files are created with openat(O_CREAT | O_EXCL | O_NOFOLLOW) below a directory descriptor of
 * the temporary directory, intermediate directories with mkdirat and opened with O_NOFOLLOW, so
 * no path outside it can be reached. Permissions from the archive are ignored (files 0644,
 * directories 0755); owners and times are not restored.
 */
#ifndef AIM_COMPILE_ARCHIVE_H
#define AIM_COMPILE_ARCHIVE_H

#include "aim/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AIM_ARCHIVE_MAX_ENTRIES    100000
#define AIM_ARCHIVE_MAX_TOTAL      ((uint64_t)4 << 30) /* bytes, all files together */
#define AIM_ARCHIVE_MAX_FILE_BYTES ((uint64_t)1 << 30) /* bytes, one file */
#define AIM_ARCHIVE_MAX_NAME       1024                /* bytes of an entry name */

typedef struct {
    size_t max_entries; /* entries of any kind (directories included) */
    uint64_t max_total; /* bytes written, all files */
    uint64_t max_file;  /* bytes written, one file */
} aim_archive_limits;

typedef struct {
    char *dir;    /* the temporary directory holding the files (owned) */
    char **files; /* regular files, relative to dir, in archive order (owned) */
    size_t file_count;
    size_t entry_count;   /* entries read, directories included */
    uint64_t total_bytes; /* bytes written */
} aim_archive;

/* The defaults above. */
void aim_archive_limits_default(aim_archive_limits *l);

/* True when the file starts like an archive aim_archive_extract reads: zip, gzip, bzip2, xz or a
 * ustar/GNU tar header. False for anything else, an .onnx model included, and for unreadable
 * files. */
bool aim_archive_sniff(const char *path);

/* Extracts `path` into a new directory "aim-archive-XXXXXX" created inside `parent` (NULL: $TMPDIR
 * or /tmp). `limits` NULL means the defaults. On success the caller owns *out (free it with
 * aim_archive_remove or aim_archive_free); on failure *out is zeroed and nothing was left on
 * disk. */
aim_status aim_archive_extract(const char *path, const char *parent,
                               const aim_archive_limits *limits, aim_archive *out);

/* Frees the lists and zeroes *a, leaving the directory on disk. */
void aim_archive_free(aim_archive *a);

/* Deletes the temporary directory and everything in it, then aim_archive_free. */
aim_status aim_archive_remove(aim_archive *a);

/* Deletes a directory tree without following symbolic links (they are removed, not entered). */
aim_status aim_remove_tree(const char *dir);

#endif
