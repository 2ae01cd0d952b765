package main

import (
	"fmt"
	"io"
	"strings"
)

// runCompletion prints a completion script for bash or zsh: commands,
// then flags (the completions list every flag of every command; the shell
// filters by prefix), and backend names after --backend.
func runCompletion(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: completion needs one argument: bash or zsh", errUsage)
	}
	commands := strings.Join(commandOrder, " ")
	flags := "-f --node --ip-family --proxy-name -o --backend --nodeport-addresses --cluster-cidr --masquerade-all --service-cidr --node-ips --shards --scheduler --healthz --cleanup-on-exit --min-sync-interval --from --to --help"
	backends := "nftables iptables ipvs userspace"
	switch args[0] {
	case "bash":
		fmt.Fprintf(stdout, `# lbctl bash completion: source <(lbctl completion bash)
_lbctl() {
  local cur prev
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  case "$prev" in
    --backend) COMPREPLY=($(compgen -W "%[3]s" -- "$cur")); return;;
    -f) COMPREPLY=($(compgen -f -- "$cur")); return;;
    -o) COMPREPLY=($(compgen -W "table json" -- "$cur")); return;;
    --ip-family) COMPREPLY=($(compgen -W "IPv4 IPv6" -- "$cur")); return;;
  esac
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "%[1]s help" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "%[2]s" -- "$cur"))
  fi
}
complete -F _lbctl lbctl
`, commands, flags, backends)
	case "zsh":
		fmt.Fprintf(stdout, `#compdef lbctl
# lbctl zsh completion: source <(lbctl completion zsh)
_lbctl() {
  if (( CURRENT == 2 )); then
    compadd -- %[1]s help
    return
  fi
  case "${words[CURRENT-1]}" in
    --backend) compadd -- %[3]s; return;;
    -f) _files; return;;
    -o) compadd -- table json; return;;
    --ip-family) compadd -- IPv4 IPv6; return;;
  esac
  compadd -- %[2]s
}
compdef _lbctl lbctl
`, commands, flags, backends)
	default:
		return fmt.Errorf("%w: completion for %q: bash or zsh", errUsage, args[0])
	}
	return nil
}
