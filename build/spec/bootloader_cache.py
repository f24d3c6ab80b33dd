"""Build-time patch of PyInstaller's bootloader, second part (the portable Linux build only;
applied with bootloader_patches.py): the per-user unpack cache.

Upstream, every start of a one-file binary inflates about 19 MB (libpython, OpenSSL, extension
modules) into a new directory and removes it on exit. In the patched copy the parent process
first looks for a cache directory of its own:

    $NEO4J_SCHEMA_ROLLBACK_CACHE_DIR, or $XDG_CACHE_HOME/neo4j-schema-rollback,
    or $HOME/.cache/neo4j-schema-rollback

holding one subdirectory per binary, named by the SHA-256 of the binary's archive (its ELF
`pydata` section; archive_key.py writes the digest into the bootloader after PyInstaller has
built the binary, so two builds never share files). The rules:

* The subdirectory is used only when its marker file names that digest, and when it and the
  cache directory are real directories (no symlinks) owned by the user and writable by no one
  else, and the cache's parent lets no other user rename entries in it (sticky, or the user's
  own and writable by no one else) and allows executing files. All of it is checked on every
  start: a few stat calls.
* It is created complete or not at all: unpacked into `.unpack-XXXXXX` beside it (each file's
  writeback started as soon as it is unpacked, so that the fsync finds it mostly written), every
  file and directory fsynced, the marker written last, then renamed into place. Two first runs at
  once both unpack; the second rename finds the first one's copy and uses it. A copy under the
  binary's name whose marker does not match is replaced; one owned by someone else, or a
  symlink, is never used and never touched.
* A staging directory left by a killed run is removed by the next run that fills the cache
  (its lock file `.unpack-XXXXXX.lock` beside it, held until the run ends, is free); after a
  fill, only the KEEP most recently used subdirectories are kept (a warm start marks its
  subdirectory used).
* With NEO4J_SCHEMA_ROLLBACK_NO_CACHE set (non-empty), in a privileged (setuid) process, when
  no cache directory can be made or trusted (no or read-only HOME), when the disk has too
  little room, or when anything fails while filling, the binary unpacks per start as before
  (bootloader_patches.py), with no warning.
* With a warm cache nothing is unpacked and nothing is removed afterwards, so the parent
  process replaces itself with the application (exec, no fork): one process, as signals and
  exit codes always looked from outside. The child's check of its directory's name (upstream:
  `_MEI` and the parent's PID) accepts a cache subdirectory's name.

tests/unit/test_bootloader_patches.py checks the texts against the sdist; the cache's rules are
tested on real filesystems, with a second real UID, in tests/integration/test_unpack_cache.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from driver_patches import Patch

MARKER = "neo4j-schema-rollback bootloader patch"
UTILS = "bootloader/src/pyi_utils_posix.c"
MAIN = "bootloader/src/pyi_main.c"
SECURITY = "bootloader/src/pyi_security.c"
ARCHIVE = "bootloader/src/pyi_archive.c"

KEY_PREFIX = b"NSR-ARCHIVE-SHA256:"  # archive_key.py finds the placeholder by it
KEY_PLACEHOLDER = KEY_PREFIX + b"0" * 64
CACHE_DIR_VARIABLE = "NEO4J_SCHEMA_ROLLBACK_CACHE_DIR"
NO_CACHE_VARIABLE = "NEO4J_SCHEMA_ROLLBACK_NO_CACHE"
CACHE_NAME = "neo4j-schema-rollback"
COMPLETE = ".complete"  # the marker, written last
KEEP = 3  # subdirectories kept after a fill, the new one included
STALE_UNLOCKED_SECONDS = 60  # a staging directory without its lock file is older than this: left

INCLUDES = """#include <dirent.h> /* opendir */
#include <sys/file.h> /* flock */
#include <time.h> /* time */
#include "pyi_archive.h"
#include "pyi_launch.h" /* pyi_launch_extract_files_from_archive */
"""

CODE = f'''/* {MARKER} (build/spec/bootloader_cache.py): the per-user unpack cache. */

/* archive_key.py replaces the zeros with the SHA-256 of this binary's archive; volatile, so
 * that the compiler cannot fold the placeholder into the code that reads it. */
static volatile const char _nsr_archive_key[] = "{KEY_PLACEHOLDER.decode()}";
static int _nsr_cache_used = 0; /* application_home_dir is a complete cache directory */

int pyi_nsr_unpack_cache_used(void);
int pyi_nsr_exec_application(struct PYI_CONTEXT *pyi_ctx);

int
pyi_nsr_unpack_cache_used(void)
{{
    return _nsr_cache_used;
}}

/* Whether `name` is 64 lowercase hexadecimal digits: a cache subdirectory's name. */
static int
_nsr_is_digest(const char *name)
{{
    return strlen(name) == 64 && strspn(name, "0123456789abcdef") == 64;
}}

/* The digest archive_key.py wrote, or -1 for a binary it never stamped. */
static int
_nsr_archive_digest(char digest[65])
{{
    size_t i;

    for (i = 0; i < 64; i++) {{
        digest[i] = _nsr_archive_key[{len(KEY_PREFIX)} + i];
    }}
    digest[64] = '\\0';
    return _nsr_is_digest(digest) && strspn(digest, "0") != 64 ? 0 : -1;
}}

/* Whether `path` is a real directory (not a symlink) of the user's that no one else may
 * write to. */
static int
_nsr_owned_dir(const char *path)
{{
    struct stat st;

    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid()
        && !(st.st_mode & (S_IWGRP | S_IWOTH));
}}

/* The cache directory into `root` and the directory it is made in into `base`; -1 when the
 * environment names none. */
static int
_nsr_cache_root(char *root, char *base)
{{
    char *value = pyi_getenv("{CACHE_DIR_VARIABLE}");
    int ok = 0;

    if (value != NULL && value[0] != '\\0') {{
        ok = value[0] == '/' && snprintf(root, PYI_PATH_MAX, "%s", value) < PYI_PATH_MAX
            && pyi_path_dirname(base, root);
        free(value);
        return ok ? 0 : -1;
    }}
    free(value);
    value = pyi_getenv("XDG_CACHE_HOME");
    if (value != NULL && value[0] == '/') {{  /* relative values are invalid (XDG) */
        ok = snprintf(base, PYI_PATH_MAX, "%s", value) < PYI_PATH_MAX;
    }} else {{
        free(value);
        value = pyi_getenv("HOME");
        ok = value != NULL && value[0] == '/'
            && snprintf(base, PYI_PATH_MAX, "%s/.cache", value) < PYI_PATH_MAX;
        if (ok && mkdir(base, 0700) != 0 && errno != EEXIST) {{
            ok = 0;
        }}
    }}
    free(value);
    return ok && snprintf(root, PYI_PATH_MAX, "%s/{CACHE_NAME}", base) < PYI_PATH_MAX ? 0 : -1;
}}

/* Whether no other user can rename entries in `base` and files in it may be executed. */
static int
_nsr_trusted_base(const char *base)
{{
    struct stat st;
    struct statvfs vfs;

    if (stat(base, &st) != 0 || !S_ISDIR(st.st_mode)) {{
        return 0;
    }}
    if (statvfs(base, &vfs) == 0 && (vfs.f_flag & ST_NOEXEC)) {{
        return 0;
    }}
    return (st.st_mode & S_ISVTX)
        || (st.st_uid == geteuid() && !(st.st_mode & (S_IWGRP | S_IWOTH)));
}}

static void
_nsr_marker_text(char *text, size_t size, const char *digest)
{{
    snprintf(text, size, "{CACHE_NAME} unpack cache\\narchive sha256 %s\\n", digest);
}}

/* Whether directory `dir` holds the marker of a complete unpack of `digest`. */
static int
_nsr_marker_matches(const char *dir, const char *digest)
{{
    char path[PYI_PATH_MAX];
    char expected[160];
    char found[161];
    ssize_t n;
    int fd;

    if (snprintf(path, PYI_PATH_MAX, "%s/{COMPLETE}", dir) >= PYI_PATH_MAX) {{
        return 0;
    }}
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {{
        return 0;
    }}
    n = read(fd, found, sizeof(found) - 1);
    close(fd);
    if (n < 0) {{
        return 0;
    }}
    found[n] = '\\0';
    _nsr_marker_text(expected, sizeof(expected), digest);
    return strcmp(found, expected) == 0;
}}

/* fsync every file and directory under `dir`, and `dir` itself. */
static int
_nsr_fsync_tree(const char *dir)
{{
    char path[PYI_PATH_MAX];
    struct dirent *entry;
    struct stat st;
    DIR *handle;
    int ret = 0;
    int fd;

    handle = opendir(dir);
    if (handle == NULL) {{
        return -1;
    }}
    while (ret == 0 && (entry = readdir(handle)) != NULL) {{
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) {{
            continue;
        }}
        if (snprintf(path, PYI_PATH_MAX, "%s/%s", dir, entry->d_name) >= PYI_PATH_MAX
            || lstat(path, &st) != 0) {{
            ret = -1;
        }} else if (S_ISDIR(st.st_mode)) {{
            ret = _nsr_fsync_tree(path);
        }} else if (S_ISREG(st.st_mode)) {{
            fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            ret = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
            if (fd >= 0) {{
                close(fd);
            }}
        }}
    }}
    closedir(handle);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {{
        ret = -1;
    }}
    if (fd >= 0) {{
        close(fd);
    }}
    return ret;
}}

static int
_nsr_write_marker(const char *dir, const char *digest)
{{
    char path[PYI_PATH_MAX];
    char text[160];
    size_t length;
    int fd;
    int ok;

    if (snprintf(path, PYI_PATH_MAX, "%s/{COMPLETE}", dir) >= PYI_PATH_MAX) {{
        return -1;
    }}
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {{
        return -1;
    }}
    _nsr_marker_text(text, sizeof(text), digest);
    length = strlen(text);
    ok = write(fd, text, length) == (ssize_t)length && fsync(fd) == 0;
    return close(fd) == 0 && ok ? 0 : -1;
}}

/* Whether the file system of `dir` has room for everything the archive unpacks, and 1 MiB. */
static int
_nsr_room_for_archive(const struct PYI_CONTEXT *pyi_ctx, const char *dir)
{{
    const struct ARCHIVE *archive = pyi_ctx->archive;
    const struct TOC_ENTRY *entry;
    unsigned long long needed = 1024 * 1024;
    struct statvfs vfs;

    for (entry = archive->toc; entry < archive->toc_end;
         entry = pyi_archive_next_toc_entry(archive, entry)) {{
        switch (entry->typecode) {{
            case ARCHIVE_ITEM_BINARY:
            case ARCHIVE_ITEM_DATA:
            case ARCHIVE_ITEM_ZIPFILE:
            case ARCHIVE_ITEM_SYMLINK:
                needed += entry->uncompressed_length + 4096; /* and a block each, at most */
                break;
            default:
                break;
        }}
    }}
    return statvfs(dir, &vfs) == 0
        && (unsigned long long)vfs.f_bavail * vfs.f_frsize >= needed;
}}

/* Whether the staging directory `dir` was left by a run that is gone: its lock file beside
 * it, held by that run until the end, can be taken (or was never made, long ago). */
static int
_nsr_staging_abandoned(const char *dir)
{{
    char path[PYI_PATH_MAX];
    struct stat st;
    int fd;
    int free_lock;

    if (snprintf(path, PYI_PATH_MAX, "%s.lock", dir) >= PYI_PATH_MAX) {{
        return 0;
    }}
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {{
        return errno == ENOENT && lstat(dir, &st) == 0
            && time(NULL) - st.st_mtime > {STALE_UNLOCKED_SECONDS};
    }}
    free_lock = flock(fd, LOCK_EX | LOCK_NB) == 0;
    close(fd);
    return free_lock;
}}

/* After a fill: remove abandoned staging and replaced directories, and all but the KEEP most
 * recently used subdirectories (`keep`, just made, among them). Only the user's own real
 * directories are touched; failures are left for the next fill. */
static void
_nsr_prune(const char *root, const char *keep)
{{
    char path[PYI_PATH_MAX];
    char names[64][65];
    time_t used[64];
    struct dirent *entry;
    struct stat st;
    DIR *handle;
    size_t count = 0;
    size_t i;
    size_t j;

    handle = opendir(root);
    if (handle == NULL) {{
        return;
    }}
    while ((entry = readdir(handle)) != NULL) {{
        if (snprintf(path, PYI_PATH_MAX, "%s/%s", root, entry->d_name) >= PYI_PATH_MAX
            || !_nsr_owned_dir(path)) {{
            continue;
        }}
        if (strncmp(entry->d_name, ".unpack-", 8) == 0) {{
            if (_nsr_staging_abandoned(path)) {{
                pyi_recursive_rmdir(path);
                if (strlen(path) + 5 < PYI_PATH_MAX) {{
                    strcat(path, ".lock");
                    unlink(path);
                }}
            }}
        }} else if (strncmp(entry->d_name, ".replaced-", 10) == 0) {{
            pyi_recursive_rmdir(path);
        }} else if (_nsr_is_digest(entry->d_name) && strcmp(entry->d_name, keep) != 0
                   && count < 64 && lstat(path, &st) == 0) {{
            memcpy(names[count], entry->d_name, 65);
            used[count++] = st.st_mtime;
        }}
    }}
    closedir(handle);
    /* the oldest go: keep the KEEP - 1 most recently used besides `keep` */
    for (i = 0; i < count; i++) {{
        size_t newer = 0;

        for (j = 0; j < count; j++) {{
            if (used[j] > used[i] || (used[j] == used[i] && strcmp(names[j], names[i]) > 0)) {{
                newer++;
            }}
        }}
        if (newer >= {KEEP} - 1
            && snprintf(path, PYI_PATH_MAX, "%s/%s", root, names[i]) < PYI_PATH_MAX) {{
            pyi_recursive_rmdir(path);
        }}
    }}
}}

/* Move the finished staging directory to `final`, whatever stands there: a copy another run
 * finished first is used (and ours removed), a mismatching one of the user's is replaced. */
static int
_nsr_publish(const char *root, const char *staging, const char *final, const char *digest)
{{
    char aside[PYI_PATH_MAX];
    char old[PYI_PATH_MAX];

    if (rename(staging, final) == 0) {{
        return 0;
    }}
    if (errno != EEXIST && errno != ENOTEMPTY) {{
        return -1;
    }}
    if (!_nsr_owned_dir(final)) {{
        return -1;
    }}
    if (_nsr_marker_matches(final, digest)) {{
        pyi_recursive_rmdir(staging);
        return 0;
    }}
    if (snprintf(aside, PYI_PATH_MAX, "%s/.replaced-XXXXXX", root) >= PYI_PATH_MAX
        || mkdtemp(aside) == NULL
        || snprintf(old, PYI_PATH_MAX, "%s/old", aside) >= PYI_PATH_MAX
        || rename(final, old) != 0) {{
        return -1;
    }}
    if (rename(staging, final) != 0) {{
        return -1;
    }}
    pyi_recursive_rmdir(aside);
    return 0;
}}

/* The fill under way (a first run): the staging directory the application runs from, and
 * where it goes when the run is over. */
static int _nsr_filling = 0;
/* While a fill unpacks: pyi_archive.c starts writing each file to disk as soon as it is
 * unpacked, so the fsync of the whole copy (_nsr_sync_fill) finds most of it written already. */
int pyi_nsr_writeback = 0;
static int _nsr_fill_synced = 0;
static int _nsr_lock_fd = -1;
static char _nsr_staging[PYI_PATH_MAX];
static char _nsr_root[PYI_PATH_MAX];
static char _nsr_final[PYI_PATH_MAX];
static char _nsr_digest[65];

int pyi_nsr_unpack_cache_filling(void);
void pyi_nsr_finish_fill(void);

int
pyi_nsr_unpack_cache_filling(void)
{{
    return _nsr_filling;
}}

/* Unpack into a new staging directory in `root`, which the application then runs from while
 * the parent makes it durable (_nsr_sync_fill) and publishes it (pyi_nsr_finish_fill): the
 * first run waits for neither the disk nor a removal. 0 when the files are all there. */
static int
_nsr_stage(struct PYI_CONTEXT *pyi_ctx, const char *root, const char *final,
           const char *digest)
{{
    char lock[PYI_PATH_MAX];
    int ok;

    if (!_nsr_room_for_archive(pyi_ctx, root)
        || snprintf(_nsr_staging, PYI_PATH_MAX, "%s/.unpack-XXXXXX", root) >= PYI_PATH_MAX
        || mkdtemp(_nsr_staging) == NULL) {{
        return -1;
    }}
    ok = snprintf(lock, PYI_PATH_MAX, "%s.lock", _nsr_staging) < PYI_PATH_MAX;
    if (ok) {{
        _nsr_lock_fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        ok = _nsr_lock_fd >= 0 && flock(_nsr_lock_fd, LOCK_EX | LOCK_NB) == 0;
    }}
    ok = ok && _nsr_can_map_exec(_nsr_staging);
    if (ok) {{
        snprintf(pyi_ctx->application_home_dir, PYI_PATH_MAX, "%s", _nsr_staging);
        pyi_nsr_writeback = 1;
        ok = pyi_launch_extract_files_from_archive(pyi_ctx) == 0;
        pyi_nsr_writeback = 0;
    }}
    if (!ok) {{
        pyi_recursive_rmdir(_nsr_staging);
        if (_nsr_lock_fd >= 0) {{
            unlink(lock);
            close(_nsr_lock_fd);
            _nsr_lock_fd = -1;
        }}
        pyi_ctx->application_home_dir[0] = '\\0';
        return -1;
    }}
    snprintf(_nsr_root, PYI_PATH_MAX, "%s", root);
    snprintf(_nsr_final, PYI_PATH_MAX, "%s", final);
    memcpy(_nsr_digest, digest, 65);
    _nsr_filling = 1;
    return 0;
}}

/* In the parent while the application runs: every unpacked file and directory to disk, then
 * the marker. */
static void
_nsr_sync_fill(void)
{{
    int dir_fd;

    if (!_nsr_filling) {{
        return;
    }}
    _nsr_fill_synced = _nsr_fsync_tree(_nsr_staging) == 0
        && _nsr_write_marker(_nsr_staging, _nsr_digest) == 0;
    dir_fd = open(_nsr_staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0 || fsync(dir_fd) != 0) {{
        _nsr_fill_synced = 0;
    }}
    if (dir_fd >= 0) {{
        close(dir_fd);
    }}
}}

/* In the parent after the application ended: move the complete staging directory into place
 * (not fsynced: a rename lost in a crash leaves the cache as it was) and prune; when anything
 * failed, remove it, and the next run fills anew. */
void
pyi_nsr_finish_fill(void)
{{
    char lock[PYI_PATH_MAX];

    if (_nsr_fill_synced
        && _nsr_publish(_nsr_root, _nsr_staging, _nsr_final, _nsr_digest) == 0) {{
        _nsr_prune(_nsr_root, _nsr_digest);
    }} else {{
        pyi_recursive_rmdir(_nsr_staging);
    }}
    if (snprintf(lock, PYI_PATH_MAX, "%s.lock", _nsr_staging) < PYI_PATH_MAX) {{
        unlink(lock);
    }}
    close(_nsr_lock_fd);
    _nsr_lock_fd = -1;
    _nsr_filling = 0;
}}

/* Point application_home_dir at this binary's complete cache directory, filling it first when
 * needed; -1 (nothing changed, nothing left behind) when there is no cache to trust. */
static int
_nsr_use_cache(struct PYI_CONTEXT *pyi_ctx)
{{
    char digest[65];
    char root[PYI_PATH_MAX];
    char base[PYI_PATH_MAX];
    char final[PYI_PATH_MAX];
    char *off;
    struct stat st;
    int exists;

    if (pyi_ctx->has_elevated_privileges) {{
        return -1;
    }}
    off = pyi_getenv("{NO_CACHE_VARIABLE}");
    exists = off != NULL && off[0] != '\\0';
    free(off);
    if (exists || _nsr_archive_digest(digest) != 0 || _nsr_cache_root(root, base) != 0
        || !_nsr_trusted_base(base)) {{
        return -1;
    }}
    if (mkdir(root, 0700) != 0 && errno != EEXIST) {{
        return -1;
    }}
    if (!_nsr_owned_dir(root)
        || snprintf(final, PYI_PATH_MAX, "%s/%s", root, digest) >= PYI_PATH_MAX) {{
        return -1;
    }}
    exists = lstat(final, &st) == 0;
    if (exists && !_nsr_owned_dir(final)) {{
        return -1;  /* someone else's, or a symlink: never used, never touched */
    }}
    if (exists && _nsr_marker_matches(final, digest)) {{
        utimensat(AT_FDCWD, final, NULL, 0); /* most recently used, for the pruning */
        snprintf(pyi_ctx->application_home_dir, PYI_PATH_MAX, "%s", final);
        _nsr_cache_used = 1;
        return 0;
    }}
    return _nsr_stage(pyi_ctx, root, final, digest);
}}

/* With the cache in use there is nothing to remove afterwards: become the application, as the
 * forked child of pyi_utils_create_child would. */
int
pyi_nsr_exec_application(struct PYI_CONTEXT *pyi_ctx)
{{
    char *const *argv = pyi_ctx->pyi_argv != NULL ? pyi_ctx->pyi_argv : pyi_ctx->argv;
    const int argc = pyi_ctx->pyi_argv != NULL ? pyi_ctx->pyi_argc : pyi_ctx->argc;

    if (pyi_ctx->dynamic_loader_filename[0] != 0) {{
        char *const *exec_argv = pyi_prepend_dynamic_loader_to_argv(
            argc, argv, pyi_ctx->dynamic_loader_filename);

        if (exec_argv != NULL) {{
            execvp(pyi_ctx->dynamic_loader_filename, exec_argv);
        }}
    }} else {{
        execvp(pyi_ctx->executable_filename, argv);
    }}
    PYI_ERROR("LOADER: failed to start the application: %s\\n", strerror(errno));
    return -1;
}}


'''

USE_CACHE_FIRST = "    if (_nsr_use_cache(pyi_ctx) == 0) {\n        return 0;\n    }\n"

MAIN_DECLARATIONS = Patch(
    module=MAIN,
    original="static int _pyi_main_onefile_parent(struct PYI_CONTEXT *pyi_ctx);\n",
    replacement=f"""static int _pyi_main_onefile_parent(struct PYI_CONTEXT *pyi_ctx);
/* {MARKER} (build/spec/bootloader_cache.py), in pyi_utils_posix.c */
int pyi_nsr_unpack_cache_used(void);
int pyi_nsr_unpack_cache_filling(void);
void pyi_nsr_finish_fill(void);
int pyi_nsr_exec_application(struct PYI_CONTEXT *pyi_ctx);
""",
)

MAIN_EXEC = Patch(
    module=MAIN,
    original="""    int ret;

    /* Extract files to temporary directory */
    PYI_DEBUG("LOADER: extracting files to temporary directory...\\n");
    if (pyi_launch_extract_files_from_archive(pyi_ctx) < 0) {
""",
    replacement=f"""    int ret;

    /* {MARKER}: the unpack cache holds the files already and nothing is to be removed
     * afterwards, so the application replaces this process. */
    if (pyi_nsr_unpack_cache_used()) {{
        return pyi_nsr_exec_application(pyi_ctx);
    }}

    /* Extract files to temporary directory ({MARKER}: a first run filling the cache has
     * unpacked them into its staging directory) */
    PYI_DEBUG("LOADER: extracting files to temporary directory...\\n");
    if (!pyi_nsr_unpack_cache_filling() && pyi_launch_extract_files_from_archive(pyi_ctx) < 0) {{
""",
)

MAIN_FINISH = Patch(
    module=MAIN,
    original="""    if (pyi_main_onefile_parent_cleanup(pyi_ctx) < 0) {
        ret = -1;
    }
""",
    replacement=f"""    if (pyi_nsr_unpack_cache_filling()) {{
        /* {MARKER}: the staging directory becomes the cache, not removed */
        pyi_nsr_finish_fill();
    }} else if (pyi_main_onefile_parent_cleanup(pyi_ctx) < 0) {{
        ret = -1;
    }}
""",
)

UTILS_SYNC = Patch(
    module=UTILS,
    original="""#else
    wait_rc = waitpid(child_pid, &rc, 0);
#endif
""",
    replacement=f"""#else
    _nsr_sync_fill(); /* {MARKER}: while the application runs */
    wait_rc = waitpid(child_pid, &rc, 0);
#endif
""",
)

SECURITY_NAME = Patch(
    module=SECURITY,
    original="""    name_len = strlen(basename);

#ifdef _WIN32
""",
    replacement=f"""    name_len = strlen(basename);

#ifndef _WIN32
    /* {MARKER}: a subdirectory of the unpack cache is named by the archive's SHA-256, and a
     * first run's staging directory `.unpack-XXXXXX`; the parent checked that they are the
     * user's own, and never gives one to a privileged process. No parent PID to verify. */
    if (!pyi_ctx->has_elevated_privileges
        && ((name_len == 64 && strspn(basename, "0123456789abcdef") == 64)
            || (name_len == 14 && strncmp(basename, ".unpack-", 8) == 0))) {{
        *onefile_parent_pid = 0;
        return true;
    }}
#endif

#ifdef _WIN32
""",
)

ARCHIVE_INCLUDES = Patch(
    module=ARCHIVE,
    original="#include <sys/stat.h>  /* fchmod */\n",
    replacement=f"""#include <sys/stat.h>  /* fchmod */
/* {MARKER} (build/spec/bootloader_cache.py): early writeback while a fill unpacks */
#if defined(__linux__)
    #include <sys/syscall.h> /* SYS_sync_file_range */
    #include <unistd.h> /* syscall */
#endif
extern int pyi_nsr_writeback; /* pyi_utils_posix.c */
""",
)

# A first run's fsync of the ~20 MB it unpacked outlasted a short command (`--version`); asking
# the disk to write each file as soon as it is unpacked, while the next one is inflated, leaves
# that fsync little to wait for. SYNC_FILE_RANGE_WRITE (2) only starts the writeback: it neither
# waits nor makes anything durable, which the fsync of every file still does.
ARCHIVE_WRITEBACK = Patch(
    module=ARCHIVE,
    original="""        fchmod(fileno(out_fp), S_IRUSR | S_IWUSR);
    }
#endif
""",
    replacement=f"""        fchmod(fileno(out_fp), S_IRUSR | S_IWUSR);
    }}
#endif
#if defined(__linux__) && defined(SYS_sync_file_range)
    /* {MARKER}: a fill's file goes to disk now, not at the fsync */
    if (rc == 0 && pyi_nsr_writeback && fflush(out_fp) == 0) {{
        syscall(SYS_sync_file_range, fileno(out_fp), (long long)0, (long long)0, 2u);
    }}
#endif
""",
)

PATCHES = (MAIN_DECLARATIONS, MAIN_EXEC, MAIN_FINISH, UTILS_SYNC, SECURITY_NAME, ARCHIVE_INCLUDES,
           ARCHIVE_WRITEBACK)
