"""Build-time patch of PyInstaller's bootloader (the portable Linux build only; rules as
driver_patches.py): where the one-file binary unpacks itself.

Upstream, the bootloader makes its `_MEIxxxxxx` directory in the first of $TMPDIR, $TEMP, $TMP,
/tmp, /var/tmp and /usr/tmp where `mkdtemp` succeeds, whether or not files there may be
executed: on a host whose /tmp is mounted noexec (CIS-hardened hosts) the loader then refuses
libpython and the run ends with exit 127 and the loader's words. In the patched copy
(bootloader/src/pyi_utils_posix.c of the pinned sdist), the parent process first tries the
per-user unpack cache (bootloader_cache.py); without one it unpacks per start and tries, in
order:

1. $TMPDIR, or /tmp when TMPDIR is unset or empty;
2. $XDG_RUNTIME_DIR;
3. the directory the binary is in;
4. $HOME/.cache (made, mode 0700, when missing).

A candidate is used when it is a directory that allows execution (statvfs: not ST_NOEXEC), that
no other user can rename entries in (sticky, as /tmp is, or owned by the user and writable by
no one else), and that the user can write; the bootloader then makes its own directory in it
with mkdtemp (mode 0700, owned by the user) and checks that a file there can be mapped for
execution (a security module may forbid what the mount allows), removing it and going on when
it cannot. When no candidate will do it prints one line on stderr, naming each candidate and
why it was passed over, and exits with 73 (EX_CANTCREAT) before unpacking anything.

`python3 build/spec/bootloader_patches.py DIR` patches the unpacked sdist in DIR (the portable
build runs it); tests/unit/test_bootloader_patches.py checks the texts against the sdist and
tests/integration/test_binary.py runs the result on real noexec mounts.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bootloader_cache
from driver_patches import Patch, patched_source

FILE = "bootloader/src/pyi_utils_posix.c"
EXIT_CODE = 73  # EX_CANTCREAT (sysexits.h): not a code the tool itself uses
MARKER = "neo4j-schema-rollback bootloader patch"

INCLUDES = Patch(
    module=FILE,
    original="#include <sys/wait.h>\n",
    replacement=f"""#include <sys/wait.h>
/* {MARKER} (build/spec/bootloader_patches.py): where to unpack. */
#include <fcntl.h> /* open */
#include <sys/mman.h> /* mmap */
#include <sys/statvfs.h> /* statvfs */
#if defined(__linux__) && !defined(ST_NOEXEC)
    #define ST_NOEXEC 8 /* glibc names Linux's flag only with _GNU_SOURCE */
#endif
""" + bootloader_cache.INCLUDES,
)

_HELPERS = f'''/* {MARKER}: why `dir` is no place to make the application's directory in, or NULL
 * when it is one. Libraries are loaded from there, so files in it must be executable; and no
 * other user may rename entries in it (or they could swap our directory for theirs): it is
 * sticky, as /tmp is, or ours and writable by no one else. */
static const char *
_nsr_unsuitable(const char *dir)
{{
    struct stat st;
    struct statvfs vfs;

    if (stat(dir, &st) != 0) {{
        return errno == ENOENT ? "missing" : "not accessible";
    }}
    if (!S_ISDIR(st.st_mode)) {{
        return "not a directory";
    }}
#if defined(ST_NOEXEC)
    if (statvfs(dir, &vfs) == 0 && (vfs.f_flag & ST_NOEXEC)) {{
        return "mounted noexec";
    }}
#else
    (void)vfs;
#endif
    if (!(st.st_mode & S_ISVTX)) {{
        if (st.st_uid != geteuid()) {{
            return "owned by another user and not sticky";
        }}
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {{
            return "writable by others and not sticky";
        }}
    }}
    if (access(dir, W_OK | X_OK) != 0) {{
        return "not writable";
    }}
    return NULL;
}}

/* {MARKER}: whether a file in the new directory `dir` can be mapped for execution, as the
 * loader will map libpython; a security module may forbid it where the mount allows it. */
static int
_nsr_can_map_exec(const char *dir)
{{
    char probe[PYI_PATH_MAX];
    void *map;
    int fd;
    int ok = 0;

    if (snprintf(probe, PYI_PATH_MAX, "%s/.exec-probe", dir) >= PYI_PATH_MAX) {{
        return 0;
    }}
    fd = open(probe, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
    if (fd < 0) {{
        return 0;
    }}
    if (write(fd, "", 1) == 1) {{
        map = mmap(NULL, 1, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
        if (map != MAP_FAILED) {{
            ok = 1;
            munmap(map, 1);
        }}
    }}
    close(fd);
    unlink(probe);
    return ok;
}}

/* {MARKER}: make the application's directory in the first suitable candidate (see
 * build/spec/bootloader_patches.py for the order); when there is none, say so in one line,
 * naming each candidate and why it was passed over, and exit {EXIT_CODE} with nothing unpacked. */
static int
_nsr_create_application_directory(struct PYI_CONTEXT *pyi_ctx)
{{
    char candidates[4][PYI_PATH_MAX];
    const char *labels[4] = {{"TMPDIR", "XDG_RUNTIME_DIR", "the binary's directory",
                             "HOME/.cache"}};
    int show_path = 1;
    char tried[4 * (PYI_PATH_MAX + 64)];
    char name[PYI_PATH_MAX];
    char *value;
    size_t used = 0;
    int i;

    memset(candidates, 0, sizeof(candidates));
    tried[0] = '\\0';
    value = pyi_getenv("TMPDIR");
    if (value == NULL || value[0] == '\\0') {{
        labels[0] = "/tmp (TMPDIR unset)";
        show_path = 0;
    }}
    snprintf(candidates[0], PYI_PATH_MAX, "%s", value && value[0] ? value : "/tmp");
    free(value);
    value = pyi_getenv("XDG_RUNTIME_DIR");
    if (value != NULL) {{
        snprintf(candidates[1], PYI_PATH_MAX, "%s", value);
    }}
    free(value);
    if (!pyi_path_dirname(candidates[2], pyi_ctx->executable_filename)) {{
        candidates[2][0] = '\\0';
    }}
    value = pyi_getenv("HOME");
    if (value != NULL && value[0] != '\\0'
        && snprintf(candidates[3], PYI_PATH_MAX, "%s/.cache", value) >= PYI_PATH_MAX) {{
        candidates[3][0] = '\\0';
    }}
    free(value);

    for (i = 0; i < 4; i++) {{
        const char *why;
        int n;

        if (candidates[i][0] == '\\0') {{
            why = "not set";
        }} else {{
            why = _nsr_unsuitable(candidates[i]);
            if (i == 3 && why != NULL && strcmp(why, "missing") == 0
                && mkdir(candidates[i], 0700) == 0) {{
                why = _nsr_unsuitable(candidates[i]);
            }}
        }}
        if (why == NULL) {{
            memcpy(pyi_ctx->application_home_dir, candidates[i], PYI_PATH_MAX);
            if (_pyi_format_and_create_tmpdir(pyi_ctx->application_home_dir) != 0) {{
                why = "cannot make a directory in it";
            }} else if (!_nsr_can_map_exec(pyi_ctx->application_home_dir)) {{
                rmdir(pyi_ctx->application_home_dir);
                why = "does not allow executing files";
            }} else {{
                return 0;
            }}
        }}
        n = snprintf(tried + used, sizeof(tried) - used, "%s%s%s%s: %s", used ? ", " : "",
                     labels[i], (i || show_path) && candidates[i][0] ? " " : "",
                     (i || show_path) ? candidates[i] : "", why);
        if (n > 0 && (size_t)n < sizeof(tried) - used) {{
            used += (size_t)n;
        }}
    }}
    if (!pyi_path_basename(name, pyi_ctx->executable_filename)) {{
        snprintf(name, PYI_PATH_MAX, "%s", "bootloader");
    }}
    fprintf(stderr, "%s: error: no directory to unpack into (%s); set TMPDIR to a directory "
            "that allows executing files and that only you can write to (exit {EXIT_CODE})\\n",
            name, tried);
    exit({EXIT_CODE});
}}


'''

HELPERS = Patch(
    module=FILE,
    original="int\npyi_create_temporary_application_directory(struct PYI_CONTEXT *pyi_ctx)\n{\n",
    replacement=_HELPERS + bootloader_cache.CODE
    + "int\npyi_create_temporary_application_directory(struct PYI_CONTEXT *pyi_ctx)\n{\n",
)

_UPSTREAM_SEARCH = '''    /* Check the standard environment variables */
    for (i = 0; i < sizeof(candidate_env_vars)/sizeof(candidate_env_vars[0]); i++) {
        char *env_var_value = pyi_getenv(candidate_env_vars[i]);
        int ret;

        if (env_var_value == NULL) {
            continue;
        }

        ret = snprintf(pyi_ctx->application_home_dir, PYI_PATH_MAX, "%s", env_var_value);
        free(env_var_value);

        if (ret >= PYI_PATH_MAX) {
            continue;
        }

        if (_pyi_format_and_create_tmpdir(pyi_ctx->application_home_dir) == 0) {
            return 0;
        }
    }

    /* Check the standard temporary directory paths */
    for (i = 0; i < sizeof(candidate_tmp_dirs)/sizeof(candidate_tmp_dirs[0]); i++) {
         snprintf(pyi_ctx->application_home_dir, PYI_PATH_MAX, "%s", candidate_tmp_dirs[i]);
         if (_pyi_format_and_create_tmpdir(pyi_ctx->application_home_dir) == 0) {
            return 0;
        }
    }

    return -1; /* No suitable location found */
}
'''

SEARCH = Patch(
    module=FILE,
    original=_UPSTREAM_SEARCH,
    replacement=f'''    /* {MARKER}: the candidates above are not used; see
     * _nsr_create_application_directory. */
    (void)candidate_env_vars;
    (void)candidate_tmp_dirs;
    (void)i;
''' + bootloader_cache.USE_CACHE_FIRST + '''    return _nsr_create_application_directory(pyi_ctx);
}
''',
)

PATCHES = (INCLUDES, HELPERS, SEARCH, *bootloader_cache.PATCHES)
FILES = tuple(dict.fromkeys(patch.module for patch in PATCHES))


def patch_tree(root: Path) -> None:
    """Patch the unpacked sdist at `root` in place; PatchError when its text has changed."""
    for name in FILES:
        path = root / name
        source = path.read_text(encoding="utf-8")
        path.write_text(patched_source(name, source, PATCHES), encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: bootloader_patches.py SDIST_DIR")
    patch_tree(Path(sys.argv[1]))
