package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// parseFlags parses args, then fills every flag not given on the command
// line from its environment variable WARDEN_<FLAG> (dashes to
// underscores), then from the YAML file named by the flag configFlag (when
// not ""), whose keys are the flags' names. Precedence: flag, environment,
// config file, default.
func parseFlags(fs *flag.FlagSet, args []string, configFlag string) error {
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
		env := "WARDEN_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := f.Value.Set(v); e != nil {
				err = usageError{fmt.Errorf("%s=%q: %v", env, v, e)}
			}
			set[f.Name] = true
		}
	})
	if err != nil || configFlag == "" {
		return err
	}
	if path := fs.Lookup(configFlag).Value.String(); path != "" {
		return applyConfig(fs, path, set)
	}
	return nil
}

// applyConfig sets the flags not yet set from a YAML file of flag names to
// values. An unknown key is an error, so a typo is not silently ignored.
func applyConfig(fs *flag.FlagSet, path string, set map[string]bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return usageError{fmt.Errorf("--config: %w", err)}
	}
	var values map[string]any
	if err := yaml.Unmarshal(data, &values); err != nil {
		return usageError{fmt.Errorf("--config %s: %w", path, err)}
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var problems []string
	for _, k := range keys {
		f := fs.Lookup(k)
		if f == nil || k == "config" {
			problems = append(problems, fmt.Sprintf("unknown key %q", k))
			continue
		}
		if set[k] {
			continue
		}
		if err := f.Value.Set(configString(values[k])); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", k, err))
		}
	}
	if len(problems) > 0 {
		return usageError{fmt.Errorf("--config %s: %s", path, strings.Join(problems, "; "))}
	}
	return nil
}

// configString renders a YAML value as a flag would take it: lists
// comma-separated.
func configString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = configString(p)
		}
		return strings.Join(parts, ",")
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
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
