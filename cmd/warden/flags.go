package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// parseFlags parses args, then sets each flag they did not set from its
// WARDEN_* environment variable (--data-dir from WARDEN_DATA_DIR).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := envName(f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if e := f.Value.Set(v); e != nil {
				err = usageError{fmt.Errorf("%s=%q: %v", env, v, e)}
			}
		}
	})
	return err
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return "WARDEN_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// loadConfig fills cfg, a struct whose yaml tags are its flags' names, in
// layers: the YAML file named by --config (or WARDEN_CONFIG) over the
// flags' defaults, then WARDEN_* variables, then the flags.
func loadConfig(fs *flag.FlagSet, cfg any, args []string) error {
	if path := configPath(args); path != "" {
		if err := decodeConfig(path, cfg); err != nil {
			return usageError{fmt.Errorf("--config %s: %w", path, err)}
		}
	}
	return parseFlags(fs, args)
}

// configPath finds --config in args, else WARDEN_CONFIG.
func configPath(args []string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		name := strings.TrimLeft(a, "-")
		if len(a)-len(name) < 1 || len(a)-len(name) > 2 {
			continue
		}
		if v, ok := strings.CutPrefix(name, "config="); ok {
			return v
		}
		if name == "config" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return os.Getenv(envName("config"))
}

// decodeConfig decodes a YAML file into cfg through cfg's yaml tags
// (inline structs included), reporting every problem at once, each naming
// its key: an unknown key, or a value its field cannot take. A list may
// also be written as one comma-separated string, as its flag takes it.
func decodeConfig(path string, cfg any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	if len(doc.Content) == 0 {
		return nil // an empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: the file is not a mapping of keys to values", root.Line)
	}
	fields := yamlFields(reflect.TypeOf(cfg).Elem())
	var problems []string
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		typ, ok := fields[k.Value]
		if !ok {
			problems = append(problems, fmt.Sprintf("line %d: unknown key %q", k.Line, k.Value))
			continue
		}
		if v.Kind == yaml.ScalarNode && typ.Kind() == reflect.Slice && typ.Elem().Kind() == reflect.String {
			list := &yaml.Node{Kind: yaml.SequenceNode}
			for _, p := range strings.Split(v.Value, ",") {
				if p = strings.TrimSpace(p); p != "" {
					list.Content = append(list.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: p})
				}
			}
			v = list
		}
		one := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{k, v}}
		if err := one.Decode(cfg); err != nil {
			msg := strings.TrimSpace(strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:"))
			problems = append(problems, fmt.Sprintf("%s: %s", k.Value, msg))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// yamlFields maps the yaml keys of a struct type, inline structs included,
// to their fields' types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		sf := t.Field(i)
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		switch {
		case !sf.IsExported() || name == "-":
		case opts == "inline":
			for k, v := range yamlFields(sf.Type) {
				out[k] = v
			}
		case name != "":
			out[name] = sf.Type
		}
	}
	return out
}

// listFlag is a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = nil
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}
