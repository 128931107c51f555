# bash completion for coord (ckshim)            -*- shell-script -*-
# Commands, their options (read from `coord help COMMAND`, so they stay in
# step with coord), pids of processes under the shim (from `coord list`)
# and image files.

_coord_pids()
{
    coord list 2>/dev/null | awk 'NR > 1 && $1 ~ /^[0-9]+$/ { print $1 }'
}

# the options of a command: those in its usage line and at the start of
# its option rows (not words of the prose, such as "ssh -o ...")
_coord_options()
{
    coord help "$1" 2>/dev/null | awk '
        /^usage:/ { n = split($0, w, /[][ ]+/); for (i = 1; i <= n; i++) if (w[i] ~ /^--?[a-z]/) print w[i] }
        /^  +-/ { sub(/^ +/, ""); n = split($0, w, /[ ,]+/); for (i = 1; i <= n && w[i] ~ /^--?[a-z]/; i++) print w[i]; }
    ' | grep -E '^--?[a-z][a-z0-9-]*$' | sort -u
}

_coord()
{
    local cur prev words cword
    _init_completion || return

    local commands="run checkpoint restore migrate list inspect keygen help"
    if [[ $cword -eq 1 ]]; then
        COMPREPLY=($(compgen -W "$commands --version --help" -- "$cur"))
        return
    fi
    local cmd=${words[1]}
    case $prev in
        -o | --output | --keep | --images | --key | --remote-key | --action-script | --remote-coord)
            _filedir
            return
            ;;
        --counter | --remote-counter)
            COMPREPLY=($(compgen -W "file: redis:// none" -- "$cur"))
            compopt -o nospace 2>/dev/null
            return
            ;;
        --every | --window | --id | --max-restores | --exit-code-on-checkpoint | --ssh | --idle-limit)
            return
            ;;
        --priority)
            COMPREPLY=($(compgen -W "idle normal" -- "$cur"))
            return
            ;;
        --allow-changed)
            COMPREPLY=($(compgen -W "all" -- "$cur"))
            _filedir
            return
            ;;
    esac
    # after "run ... --", complete the program and its arguments
    local i
    for ((i = 2; i < cword; i++)); do
        if [[ $cmd == run && ${words[i]} == -- ]]; then
            _command_offset $((i + 1))
            return
        fi
    done
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_coord_options "$cmd") --help" -- "$cur"))
        return
    fi
    case $cmd in
        checkpoint | migrate)
            # the first word is a pid; then (migrate) a host
            local n=0
            for ((i = 2; i < cword; i++)); do
                [[ ${words[i]} != -* && ${words[i - 1]} != -o && ${words[i - 1]} != --* ]] && n=$((n + 1))
            done
            if [[ $n -eq 0 ]]; then
                COMPREPLY=($(compgen -W "$(_coord_pids)" -- "$cur"))
            elif [[ $cmd == migrate ]]; then
                _known_hosts_real -- "$cur"
            fi
            ;;
        restore | inspect)
            _filedir '@(img|ckpt|image)'
            [[ ${#COMPREPLY[@]} -eq 0 ]] && _filedir
            [[ $cmd == restore ]] && COMPREPLY+=($(compgen -W "-" -- "$cur"))
            ;;
        keygen)
            _filedir
            ;;
        help)
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
            ;;
    esac
} && complete -F _coord coord

# ex: filetype=sh
