#!/bin/sh
# nbspawner seed-home: copy a skeleton into the user's home on first start.
#
# Runs in an init container that uses the notebook image, as the user's own uid/gid,
# non-root, with a read-only root filesystem and only the home volume mounted read-write.
# The script text is fixed; every input comes from the environment and is validated here a
# second time (the hub validated it first). Bad input is refused, never "cleaned up".
#
#   NBS_SEED_FROM  skeleton directory inside the image (e.g. /tmp_home/jovyan, /etc/skel)
#   NBS_HOME       where the home volume is mounted (e.g. /home/alice)
#   NBS_UID        the uid this script must be running as (never 0)
#   NBS_GID        the gid this script must be running as
#
# Semantics (documented in docs/how-to/nfs-homes.md):
# - the home is seeded only when it is empty (no entries at all, `lost+found` ignored);
# - nothing is ever overwritten: an entry that already exists in the home is skipped, even if
#   it appeared while copying (files are created with O_EXCL, directories with mkdir);
# - file contents are copied; the user-execute bit is kept, other mode bits are not;
# - symbolic links are copied as links, never followed; devices, fifos and sockets are skipped;
# - new files and directories get umask 077 (private to the user), owned by the running uid;
# - a missing skeleton, or a home that is not empty, unreadable or not writable, is not an
#   error (exit 0 with a message): the notebook still starts.
#
# Exit status: 0 seeded or nothing to do, 2 refused input (the hub sent something invalid).

set -u
LC_ALL=C
export LC_ALL
umask 077

log() {
    printf 'nbspawner seed-home: %s\n' "$1" >&2
}

refuse() {
    # never print the offending value: it may be hostile or personal
    log "refused: $1"
    exit 2
}

# An absolute, normalised path of A-Z a-z 0-9 _ . - / : no empty, '.' or '..' segment, not "/".
check_path() {
    case $1 in
        '' | *[!A-Za-z0-9_./-]*) refuse "$2 is empty or has characters outside A-Z a-z 0-9 _ . - /" ;;
    esac
    case $1 in
        /*) ;;
        *) refuse "$2 is not an absolute path" ;;
    esac
    case $1/ in
        *//* | */./* | */../*) refuse "$2 has an empty, '.' or '..' segment or is /" ;;
    esac
}

# A decimal id without sign or leading zero, at most 10 digits.
check_id() {
    case $1 in
        '' | *[!0-9]*) refuse "$2 is not a decimal number" ;;
        0?*) refuse "$2 has a leading zero" ;;
    esac
    [ "${#1}" -le 10 ] || refuse "$2 is too large"
}

SEED_FROM=${NBS_SEED_FROM-}
HOME_DIR=${NBS_HOME-}
WANT_UID=${NBS_UID-}
WANT_GID=${NBS_GID-}

check_path "$SEED_FROM" NBS_SEED_FROM
check_path "$HOME_DIR" NBS_HOME
check_id "$WANT_UID" NBS_UID
check_id "$WANT_GID" NBS_GID
[ "$WANT_UID" != 0 ] || refuse "NBS_UID is 0: seeding as root would leave root-owned files"

RUN_UID=$(id -u) || refuse "cannot determine the running uid"
RUN_GID=$(id -g) || refuse "cannot determine the running gid"
[ "$RUN_UID" != 0 ] || refuse "running as root: seeding must run as the user"
[ "$RUN_UID" = "$WANT_UID" ] || refuse "running uid does not match NBS_UID"
[ "$RUN_GID" = "$WANT_GID" ] || refuse "running gid does not match NBS_GID"

case $HOME_DIR/ in
    "$SEED_FROM"/*) refuse "NBS_HOME is inside NBS_SEED_FROM" ;;
esac
case $SEED_FROM/ in
    "$HOME_DIR"/*) refuse "NBS_SEED_FROM is inside NBS_HOME" ;;
esac

if [ ! -d "$SEED_FROM" ]; then
    log "no skeleton directory in this image; nothing to seed"
    exit 0
fi
if [ ! -d "$HOME_DIR" ] || [ -L "$HOME_DIR" ]; then
    log "the home mount is missing or not a directory; not seeding"
    exit 0
fi
if [ ! -r "$HOME_DIR" ] || [ ! -x "$HOME_DIR" ]; then
    # an unreadable directory would look empty to the glob below
    log "the home is not readable by uid $RUN_UID; not seeding"
    exit 0
fi

for entry in "$HOME_DIR"/* "$HOME_DIR"/.[!.]* "$HOME_DIR"/..?*; do
    if [ -e "$entry" ] || [ -L "$entry" ]; then
        [ "${entry##*/}" = lost+found ] && continue
        log "the home is not empty; not seeding"
        exit 0
    fi
done

if [ ! -w "$HOME_DIR" ]; then
    log "the home is empty but not writable by uid $RUN_UID (is it owned by the user?); not seeding"
    exit 0
fi

copied=0
skipped=0
failed=0

# copy_tree SRC DST: copy the entries of SRC into the existing directory DST.
# POSIX sh has no local variables: nothing below uses `entry` or `target` after the recursive
# call returns (the `for` word list was expanded before the loop started).
copy_tree() {
    for entry in "$1"/* "$1"/.[!.]* "$1"/..?*; do
        if [ ! -e "$entry" ] && [ ! -L "$entry" ]; then
            continue
        fi
        target=$2/${entry##*/}
        if [ -e "$target" ] || [ -L "$target" ]; then
            skipped=$((skipped + 1))
            continue
        fi
        if [ -L "$entry" ]; then
            # -R -P copies the link itself (POSIX; GNU and busybox cp agree)
            if cp -R -P "$entry" "$target"; then copied=$((copied + 1)); else failed=$((failed + 1)); fi
        elif [ -d "$entry" ]; then
            if mkdir "$target"; then
                copied=$((copied + 1))
                copy_tree "$entry" "$target"
            else
                failed=$((failed + 1))
            fi
        elif [ -f "$entry" ]; then
            if [ ! -r "$entry" ]; then
                failed=$((failed + 1))
            # with noclobber (set -C) `>` creates the file with O_EXCL: if anything appeared at
            # the target since the check above (another server of the same user), it fails
            # instead of overwriting. `cat` rather than `cp`: GNU, busybox and toybox cp differ
            # on -n.
            elif cat "$entry" >"$target"; then
                if [ -x "$entry" ]; then chmod u+x "$target" || :; fi
                copied=$((copied + 1))
            else
                failed=$((failed + 1))
            fi
        else
            skipped=$((skipped + 1))
        fi
    done
}

set -C
copy_tree "$SEED_FROM" "$HOME_DIR"
log "seeded the home: $copied copied, $skipped skipped, $failed failed"
exit 0
