package main

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// subcommands are the subcommands of each command group, by the group's
// path, and the shells of `warden completion`: the words the completion
// scripts offer after them. TestSubcommandTable holds the table to what
// each group answers to a subcommand it does not know.
var subcommands = map[string][]string{
	"profile":    {"ls", "get", "set", "rm"},
	"issuer":     {"add", "get", "ls", "update", "rm", "key"},
	"issuer key": {"add", "rm", "ls"},
	"hook":       {"put", "get", "rm", "ls"},
	"routes":     {"put", "get", "rm", "ls", "test"},
	"audit":      {"ls"},
	"completion": {"bash", "zsh", "fish"},
}

func init() {
	for _, k := range []agentKind{usersCLI, clientsCLI} {
		subcommands[k.name] = []string{"add", "get", "ls", "update", "rm", "init", "identity", "access"}
		subcommands[k.name+" identity"] = []string{"add", "ls", "rm"}
		subcommands[k.name+" access"] = []string{"add", "ls", "rm"}
	}
	// completion reads the command table, so it joins it here: in the
	// table's literal it would make an initialization cycle.
	commands["completion"] = cmdCompletion
}

// cmdNode is a command path and what may follow it on the command line.
type cmdNode struct {
	Path        string   `json:"path"`                  // "" for warden itself, "user identity add"
	Subcommands []string `json:"subcommands,omitempty"` // or the words it takes (completion's shells)
	Flags       []string `json:"flags"`                 // as typed: --issuer, -o
	ValueFlags  []string `json:"valueFlags,omitempty"`  // the names of the flags that take a value
	Outputs     []string `json:"outputs,omitempty"`     // what -o takes
	// usage is each flag's help, by name: the descriptions fish shows.
	usage map[string]string
}

// commandTree lists every command path, warden's own first. Each
// command's flags are the ones its flag set holds, read as it prints its
// --help, so that the scripts cannot fall behind the commands.
func commandTree(e env) []cmdNode {
	root := cmdNode{Path: "", Subcommands: append(slices.Sorted(maps.Keys(commands)), "serve"), usage: map[string]string{}}
	slices.Sort(root.Subcommands)
	for name, takesValue := range globalFlags {
		root.Flags = append(root.Flags, flagSpelling(name))
		if takesValue {
			root.ValueFlags = append(root.ValueFlags, name)
		}
	}
	root.Flags = append(root.Flags, "--help")
	slices.Sort(root.Flags)
	slices.Sort(root.ValueFlags)
	nodes := []cmdNode{root}
	outputs := map[string]bool{}
	var walk func(path string)
	walk = func(path string) {
		n := commandNode(e, path)
		for _, o := range n.Outputs {
			if !outputs[o] {
				outputs[o] = true
				nodes[0].Outputs = append(nodes[0].Outputs, o)
			}
		}
		nodes = append(nodes, n)
		for _, sub := range n.Subcommands {
			walk(path + " " + sub)
		}
	}
	for _, c := range root.Subcommands {
		walk(c)
	}
	return nodes
}

// commandNode reads the flags of one command path by running it with
// --help; a group, which has no flags of its own, takes only --help.
func commandNode(e env, path string) cmdNode {
	n := cmdNode{Path: path, Subcommands: subcommands[path], usage: map[string]string{}}
	var fs *flag.FlagSet
	words := strings.Fields(path)
	if words[0] == "serve" {
		fs, _ = newServeFlags(io.Discard)
	} else {
		quiet := env{ctx: e.ctx, stdout: io.Discard, stderr: io.Discard, seeFlags: func(f *cmdFlags) {
			fs, n.Outputs = f.FlagSet, f.formats
		}}
		_ = commands[words[0]](quiet, append(words[1:], "--help"))
	}
	n.Flags = []string{"--help"}
	if fs != nil {
		fs.VisitAll(func(f *flag.Flag) {
			n.Flags = append(n.Flags, flagSpelling(f.Name))
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
				n.ValueFlags = append(n.ValueFlags, f.Name)
			}
			_, n.usage[f.Name] = flag.UnquoteUsage(f)
		})
	}
	slices.Sort(n.Flags)
	return n
}

// flagSpelling is how help spells a flag: -o, but --profile.
func flagSpelling(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

var shellScripts = map[string]func([]cmdNode) string{"bash": bashCompletion, "zsh": zshCompletion, "fish": fishCompletion}

// cmdCompletion prints the completion script of a shell; -o json prints
// the command tree the scripts are made from.
func cmdCompletion(e env, args []string) error {
	f := newFlags(e, "completion", "completion bash|zsh|fish", "script", "json")
	if err := f.parse(args, 0, 1); err != nil {
		return err
	}
	tree := commandTree(e)
	if f.json() {
		return printJSON(e.stdout, map[string]any{"commands": tree})
	}
	if len(f.args) == 0 {
		return usageError{fmt.Errorf("name a shell: want bash, zsh or fish")}
	}
	script, ok := shellScripts[f.args[0]]
	if !ok {
		return usageError{fmt.Errorf("unknown shell %q: want bash, zsh or fish", f.args[0])}
	}
	fmt.Fprint(e.stdout, script(tree))
	return nil
}

// The scripts share one way to read a command line: walk the words before
// the cursor from warden's own node, skip flags (and the value after one
// that takes a value), and step into a word that is a subcommand of the
// node reached. What follows that node completes: its flags after '-',
// else its subcommands, else files; what -o takes after -o.

func bashCompletion(tree []cmdNode) string {
	var b strings.Builder
	b.WriteString(`# bash completion for warden, printed by 'warden completion bash'.
# Load it in this shell with: source <(warden completion bash)
# or in every one: warden completion bash > /etc/bash_completion.d/warden

# __warden_node sets subs, flags, valflags and outputs for a command path.
__warden_node() {
    subs="" flags="" valflags="" outputs=""
    case "$1" in
`)
	for _, n := range tree {
		fmt.Fprintf(&b, "    %q)\n", n.Path)
		fmt.Fprintf(&b, "        subs=%q\n        flags=%q\n", strings.Join(n.Subcommands, " "), strings.Join(n.Flags, " "))
		fmt.Fprintf(&b, "        valflags=%q\n        outputs=%q\n        ;;\n", strings.Join(n.ValueFlags, " "), strings.Join(n.Outputs, " "))
	}
	b.WriteString(`    esac
}

_warden() {
    local cur word name path="" skip="" subs flags valflags outputs i
    cur="${COMP_WORDS[COMP_CWORD]}"
    COMPREPLY=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        if [[ -n $skip ]]; then
            skip=""
            continue
        fi
        __warden_node "$path"
        case "$word" in
        -*=*) ;;
        -*)
            name="${word#-}"
            name="${name#-}"
            if [[ " $valflags " == *" $name "* ]]; then skip="$name"; fi
            ;;
        *)
            if [[ " $subs " == *" $word "* ]]; then path="${path:+$path }$word"; fi
            ;;
        esac
    done
    __warden_node "$path"
    if [[ -n $skip ]]; then
        if [[ $skip == o ]]; then COMPREPLY=($(compgen -W "$outputs" -- "$cur")); fi
    elif [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    elif [[ -n $subs ]]; then
        COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    fi
    return 0
}

complete -o default -F _warden warden
`)
	return b.String()
}

func zshCompletion(tree []cmdNode) string {
	var b strings.Builder
	b.WriteString(`#compdef warden
# zsh completion for warden, printed by 'warden completion zsh'.
# Save it as _warden in a directory of $fpath, or load it in this shell
# with: source <(warden completion zsh)

# __warden_node sets subs, flags, valflags and outputs for a command path.
__warden_node() {
  subs=() flags=() valflags=() outputs=()
  case "$1" in
`)
	for _, n := range tree {
		fmt.Fprintf(&b, "  %q)\n", n.Path)
		fmt.Fprintf(&b, "    subs=(%s)\n    flags=(%s)\n", strings.Join(n.Subcommands, " "), strings.Join(n.Flags, " "))
		fmt.Fprintf(&b, "    valflags=(%s)\n    outputs=(%s)\n    ;;\n", strings.Join(n.ValueFlags, " "), strings.Join(n.Outputs, " "))
	}
	b.WriteString(`  esac
}

_warden() {
  local cur word name cmdpath="" skip="" i
  local -a subs flags valflags outputs
  cur="${words[CURRENT]}"
  for ((i = 2; i < CURRENT; i++)); do
    word="${words[i]}"
    if [[ -n $skip ]]; then
      skip=""
      continue
    fi
    __warden_node "$cmdpath"
    case "$word" in
    -*=*) ;;
    -*)
      name="${word#-}"
      name="${name#-}"
      if (( ${valflags[(Ie)$name]} )); then skip="$name"; fi
      ;;
    *)
      if (( ${subs[(Ie)$word]} )); then cmdpath="${cmdpath:+$cmdpath }$word"; fi
      ;;
    esac
  done
  __warden_node "$cmdpath"
  if [[ -n $skip ]]; then
    if [[ $skip == o ]]; then compadd -a outputs; else _files; fi
  elif [[ $cur == -* ]]; then
    compadd -a flags
  elif (( ${#subs} )); then
    compadd -a subs
  else
    _files
  fi
}

if [[ "${funcstack[1]}" == _warden ]]; then
  _warden "$@"
else
  compdef _warden warden
fi
`)
	return b.String()
}

func fishCompletion(tree []cmdNode) string {
	var b strings.Builder
	b.WriteString(`# fish completion for warden, printed by 'warden completion fish'.
# Save it as ~/.config/fish/completions/warden.fish, or load it in this
# shell with: warden completion fish | source

function __warden_subs
    switch "$argv[1]"
`)
	for _, n := range tree {
		if len(n.Subcommands) > 0 {
			fmt.Fprintf(&b, "        case %s\n            echo %s\n", fishQuote(n.Path), strings.Join(n.Subcommands, " "))
		}
	}
	b.WriteString(`    end
end

function __warden_valflags
    switch "$argv[1]"
`)
	for _, n := range tree {
		if len(n.ValueFlags) > 0 {
			fmt.Fprintf(&b, "        case %s\n            echo %s\n", fishQuote(n.Path), strings.Join(n.ValueFlags, " "))
		}
	}
	b.WriteString(`    end
end

# __warden_path prints the command path of the words before the cursor.
function __warden_path
    set -l path ''
    set -l skip 0
    for word in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $word
            case '-*=*'
            case '-*'
                set -l name (string replace -r -- '^--?' '' $word)
                if contains -- $name (string split ' ' -- (__warden_valflags "$path"))
                    set skip 1
                end
            case '*'
                if contains -- $word (string split ' ' -- (__warden_subs "$path"))
                    set path (string trim -- "$path $word")
                end
        end
    end
    echo $path
end

# __warden_at says whether the command path is $argv[1]; it reads the
# command line once for all the completions below.
function __warden_at
    set -l line (commandline -opc)
    if test "$line" != "$__warden_line"
        set -g __warden_line "$line"
        set -g __warden_at_path (__warden_path)
    end
    test "$__warden_at_path" = "$argv[1]"
end

complete -c warden -e
`)
	for _, n := range tree {
		cond := fishQuote("__warden_at " + fishQuote(n.Path))
		if len(n.Subcommands) > 0 {
			fmt.Fprintf(&b, "complete -c warden -n %s -f -a %s\n", cond, fishQuote(strings.Join(n.Subcommands, " ")))
		}
		for _, fl := range n.Flags {
			name := strings.TrimLeft(fl, "-")
			opt := "-l " + name
			if len(name) == 1 {
				opt = "-s " + name
			}
			if slices.Contains(n.ValueFlags, name) {
				opt += " -r"
				if name == "o" && len(n.Outputs) > 0 {
					opt += " -f -a " + fishQuote(strings.Join(n.Outputs, " "))
				}
			}
			if u := n.usage[name]; u != "" {
				opt += " -d " + fishQuote(u)
			}
			fmt.Fprintf(&b, "complete -c warden -n %s %s\n", cond, opt)
		}
	}
	return b.String()
}

// fishQuote quotes s for fish: in single quotes, where only \ and ' are
// escaped.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
