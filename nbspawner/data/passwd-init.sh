# nbspawner passwd init script. Run by the init container "nbspawner-passwd" as
#     /bin/sh -c "<this text>" nbspawner-passwd
# with the *notebook image* and as the *user's* uid/gid (non-root, no privilege escalation,
# all capabilities dropped, read-only root filesystem).
#
# The text of this script is fixed: it never contains user data. Every input comes from the
# environment and is validated again here (the hub validated it already, see
# nbspawner/passwd.py); a value that fails a rule is refused, never "cleaned".
#
#   NB_PW_USER     user name            letter or _, then A-Z a-z 0-9 _ . -, at most 32, not root
#   NB_PW_UID      uid                  decimal, no leading zero, 1..4294967294, not 65534/65535/4294967294
#   NB_PW_GID      primary gid          decimal, 1..4294967294 (0 only with NB_PW_ALLOW_GID0=1)
#   NB_PW_HOME     home directory       normalised absolute path of A-Z a-z 0-9 _ . / -
#   NB_PW_SHELL    login shell          same rule as NB_PW_HOME
#   NB_PW_GECOS    full name (optional) A-Z a-z 0-9 _ . space ' -, at most 64
#   NB_PW_GROUPS   groups (optional)    name:gid,name:gid,...  (the user is a member of each)
#   NB_PW_OUT      output directory     default /nbspawner-passwd (the in-memory emptyDir)
#   NB_PW_ALLOW_GID0  "1" allows gid 0 for the primary and listed groups (default: refused)
#
# Output: $NB_PW_OUT/passwd and $NB_PW_OUT/group, each written to a temporary file in the
# same directory and renamed into place, both only after every input passed. On any problem
# the script prints one line to stderr and exits non-zero without creating either file, so
# the pod fails instead of starting: kubelet would otherwise create a *directory* at a
# subPath mount whose source file is missing, and /etc/passwd would be a directory.
#
# What is written (the same algorithm as nbspawner.passwd.merge_files, which the tests
# compare byte for byte):
#   passwd: the user's line first, then every line of the image's /etc/passwd except a
#           line for the same *name* (replaced). An image entry with the same *uid*
#           (jovyan is 1000) is kept after the user's line: getpwuid() returns the first
#           match, so the uid resolves to the user, and the image's name still resolves.
#   group:  one line per listed group (name:x:gid:members, the user added as a member of
#           each supplementary group, existing members of an image group with the same
#           name and gid kept), then a private group named after the user if the primary
#           gid has no name anywhere, then every image group line except those whose name
#           is one of the listed groups (replaced or merged).
#
# POSIX sh only (dash, busybox ash, bash as sh); the only external command is mv.

set -eu
LC_ALL=C
export LC_ALL
umask 022

prog=nbspawner-passwd
max_id=4294967294
max_path=4095
name_chars=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-
digit_chars=0123456789
path_chars=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-
gecos_chars="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_. '-"

refuse() {
    printf '%s: refused: %s\n' "$prog" "$1" >&2
    exit 1
}

# only_chars VALUE CLASS WHAT: every character of VALUE is one of CLASS.
# Positive matching: VALUE is split with IFS set to the allowed characters, which leaves
# exactly the characters that are not allowed; any leftover is refused. A byte the shell
# does not understand (invalid UTF-8 under some locale) stays in a field and is refused.
# Linear time, unlike a character-by-character loop in sh.
only_chars() {
    oc_ifs=$IFS
    set -f
    IFS=$2
    # shellcheck disable=SC2086 # splitting is the point
    set -- $1 "$3"
    IFS=$oc_ifs
    set +f
    oc_left=
    while [ "$#" -gt 1 ]; do
        oc_left=$oc_left$1
        shift
    done
    [ -z "$oc_left" ] || refuse "$1 contains a character outside the allowed set"
}

check_name() {
    case $1 in
        '') refuse "$2 is empty" ;;
        *[!A-Za-z0-9_.-]*) refuse "$2 contains a character outside A-Z a-z 0-9 _ . -" ;;
        [0-9.-]*) refuse "$2 must start with a letter or _" ;;
    esac
    only_chars "$1" "$name_chars" "$2"
    [ "${#1}" -le 32 ] || refuse "$2 is longer than 32 characters"
    [ "$1" != root ] || refuse "$2 is the reserved name root"
}

# check_id VALUE WHAT MIN
check_id() {
    case $1 in
        '') refuse "$2 is empty" ;;
        *[!0-9]*) refuse "$2 is not a decimal number" ;;
        0?*) refuse "$2 has a leading zero" ;;
    esac
    only_chars "$1" "$digit_chars" "$2"
    [ "${#1}" -le 10 ] || refuse "$2 is out of range"
    [ "$1" -ge "$3" ] || refuse "$2 is below $3"
    [ "$1" -le "$max_id" ] || refuse "$2 is above $max_id"
    case $1 in
        65534 | 65535 | 4294967294) refuse "$2 is an id file servers treat specially" ;;
    esac
}

check_path() {
    case $1 in
        /*) ;;
        *) refuse "$2 is not an absolute path" ;;
    esac
    case $1 in
        *[!A-Za-z0-9_./-]*) refuse "$2 contains a character outside A-Z a-z 0-9 _ . / -" ;;
    esac
    [ "${#1}" -le "$max_path" ] || refuse "$2 is longer than $max_path characters"
    only_chars "$1" "$path_chars" "$2"
    case $1 in
        /) ;;
        */ | *//* | */./* | */. | */../* | */..) refuse "$2 is not a normalised path" ;;
    esac
}

check_gecos() {
    case $1 in
        *[!A-Za-z0-9_.\ \'-]*) refuse "$2 contains a character outside A-Z a-z 0-9 _ . space ' -" ;;
    esac
    only_chars "$1" "$gecos_chars" "$2"
    [ "${#1}" -le 64 ] || refuse "$2 is longer than 64 characters"
}

# --- inputs ----------------------------------------------------------------------------

pw_user=${NB_PW_USER:-}
pw_uid=${NB_PW_UID:-}
pw_gid=${NB_PW_GID:-}
pw_home=${NB_PW_HOME:-}
pw_shell=${NB_PW_SHELL:-}
pw_gecos=${NB_PW_GECOS:-}
pw_groups=${NB_PW_GROUPS:-}
pw_out=${NB_PW_OUT:-/nbspawner-passwd}
pw_allow_gid0=${NB_PW_ALLOW_GID0:-}

case $pw_allow_gid0 in
    '' | 0) min_gid=1 ;;
    1) min_gid=0 ;;
    *) refuse "NB_PW_ALLOW_GID0 must be empty, 0 or 1" ;;
esac

check_name "$pw_user" NB_PW_USER
check_id "$pw_uid" NB_PW_UID 1
check_id "$pw_gid" NB_PW_GID "$min_gid"
check_path "$pw_home" NB_PW_HOME
check_path "$pw_shell" NB_PW_SHELL
check_gecos "$pw_gecos" NB_PW_GECOS
check_path "$pw_out" NB_PW_OUT

# groups: ",name:gid,name:gid," after validation and removal of exact duplicates
groups_seen=,
if [ -n "$pw_groups" ]; then
    gl_rest=$pw_groups,
    while [ -n "$gl_rest" ]; do
        gl_tok=${gl_rest%%,*}
        gl_rest=${gl_rest#*,}
        case $gl_tok in
            '') refuse "NB_PW_GROUPS has an empty entry" ;;
            *:*:* | :* | *:) refuse "NB_PW_GROUPS entries must be name:gid" ;;
            *:*) ;;
            *) refuse "NB_PW_GROUPS entries must be name:gid" ;;
        esac
        gl_name=${gl_tok%%:*}
        gl_gid=${gl_tok#*:}
        check_name "$gl_name" "a group name in NB_PW_GROUPS"
        check_id "$gl_gid" "a gid in NB_PW_GROUPS" "$min_gid"
        case $groups_seen in
            *",$gl_name:$gl_gid,"*) continue ;;
            *",$gl_name:"*) refuse "NB_PW_GROUPS lists a group name twice with different gids" ;;
        esac
        groups_seen=$groups_seen$gl_name:$gl_gid,
    done
fi

[ -d "$pw_out" ] || refuse "NB_PW_OUT is not a directory"
[ -w "$pw_out" ] || refuse "NB_PW_OUT is not writable"
[ ! -d "$pw_out/passwd" ] || refuse "NB_PW_OUT/passwd is a directory"
[ ! -d "$pw_out/group" ] || refuse "NB_PW_OUT/group is a directory"

passwd_in=/etc/passwd
group_in=/etc/group
if [ -e "$passwd_in" ]; then
    [ -r "$passwd_in" ] || refuse "the image's /etc/passwd is not readable"
else
    passwd_in=/dev/null
fi
if [ -e "$group_in" ]; then
    [ -r "$group_in" ] || refuse "the image's /etc/group is not readable"
else
    group_in=/dev/null
fi

# --- helpers over the image's group file -----------------------------------------------

# group_gid_of LINE: sets lg_gid and lg_members when LINE has at least 4 fields
group_fields() {
    case $1 in
        *:*:*:*) ;;
        *) return 1 ;;
    esac
    gf_rest=${1#*:}
    gf_rest=${gf_rest#*:}
    lg_gid=${gf_rest%%:*}
    lg_members=${gf_rest#*:}
    return 0
}

# image_members NAME GID: members of the first image line NAME:*:GID:*, empty if none
image_members() {
    im_result=
    while IFS= read -r im_line || [ -n "$im_line" ]; do
        case $im_line in
            "$1":*)
                if group_fields "$im_line" && [ "$lg_gid" = "$2" ]; then
                    im_result=$lg_members
                    break
                fi
                ;;
        esac
    done <"$group_in"
}

# image_has_gid GID / image_has_name NAME
image_has_gid() {
    while IFS= read -r ih_line || [ -n "$ih_line" ]; do
        if group_fields "$ih_line" && [ "$lg_gid" = "$1" ]; then
            return 0
        fi
    done <"$group_in"
    return 1
}

image_has_name() {
    while IFS= read -r ih_line || [ -n "$ih_line" ]; do
        case $ih_line in
            "$1":*) return 0 ;;
        esac
    done <"$group_in"
    return 1
}

# --- passwd ----------------------------------------------------------------------------

user_line=$pw_user:x:$pw_uid:$pw_gid:$pw_gecos:$pw_home:$pw_shell
tmp_passwd=$pw_out/.passwd.tmp
tmp_group=$pw_out/.group.tmp

{
    printf '%s\n' "$user_line"
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in
            '') ;;
            "$pw_user":*) ;;
            *) printf '%s\n' "$line" ;;
        esac
    done <"$passwd_in"
} >"$tmp_passwd"

# --- group -----------------------------------------------------------------------------

{
    gw_rest=${groups_seen#,}
    primary_named=no
    while [ -n "$gw_rest" ]; do
        gw_tok=${gw_rest%%,*}
        gw_rest=${gw_rest#*,}
        gw_name=${gw_tok%%:*}
        gw_gid=${gw_tok#*:}
        image_members "$gw_name" "$gw_gid"
        gw_members=$im_result
        if [ "$gw_gid" = "$pw_gid" ]; then
            primary_named=yes
        else
            case ",$gw_members," in
                *",$pw_user,"*) ;;
                *) gw_members=${gw_members:+$gw_members,}$pw_user ;;
            esac
        fi
        printf '%s:x:%s:%s\n' "$gw_name" "$gw_gid" "$gw_members"
    done
    if [ "$primary_named" = no ] && ! image_has_gid "$pw_gid"; then
        case $groups_seen in
            *",$pw_user:"*) ;;
            *)
                if ! image_has_name "$pw_user"; then
                    printf '%s:x:%s:\n' "$pw_user" "$pw_gid"
                fi
                ;;
        esac
    fi
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in
            '') continue ;;
            *:*)
                case $groups_seen in
                    *",${line%%:*}:"*) continue ;;
                esac
                ;;
        esac
        printf '%s\n' "$line"
    done <"$group_in"
} >"$tmp_group"

# --- check and publish -----------------------------------------------------------------

IFS= read -r first_line <"$tmp_passwd" || refuse "could not read back the passwd file"
[ "$first_line" = "$user_line" ] || refuse "the passwd file was not written completely"

mv -f "$tmp_group" "$pw_out/group"
mv -f "$tmp_passwd" "$pw_out/passwd"
[ -f "$pw_out/passwd" ] || refuse "passwd was not created"
[ -f "$pw_out/group" ] || refuse "group was not created"
printf '%s: wrote passwd and group for uid %s\n' "$prog" "$pw_uid" >&2
