package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wardenauthz/warden/internal/atomicfile"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// ProfileStore holds profiles in a directory, as the warden CLI keeps them:
// settings.json names the profiles (without their private keys) and the
// default one; each private key is in keys/<name>.pem, mode 0600, in a
// directory of mode 0700.
type ProfileStore struct {
	Dir string
}

// DefaultProfileStore is the CLI's store: $WARDEN_CONFIG_DIR, else warden/
// in the user's config directory.
func DefaultProfileStore() (*ProfileStore, error) {
	if d := os.Getenv("WARDEN_CONFIG_DIR"); d != "" {
		return &ProfileStore{Dir: d}, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return nil, fmt.Errorf("finding the config directory (set WARDEN_CONFIG_DIR): %w", err)
	}
	return &ProfileStore{Dir: filepath.Join(d, "warden")}, nil
}

// ProfileSettings is the content of settings.json.
type ProfileSettings struct {
	Default  string             `json:"defaultProfile,omitempty"`
	Profiles map[string]Profile `json:"profiles"`
}

// Names returns the profile names in order.
func (s *ProfileSettings) Names() []string {
	out := make([]string, 0, len(s.Profiles))
	for n := range s.Profiles {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ErrNoProfile is returned when no profile is named and there is no
// default one.
var ErrNoProfile = errors.New("there is no profile yet: enroll one with an init token ('warden init TOKEN')")

// ErrNoDefaultProfile is returned when no profile is named, profiles exist,
// but none is the default.
var ErrNoDefaultProfile = errors.New("there is no default profile")

// ErrBadProfileName is returned for a name no profile may have.
var ErrBadProfileName = errors.New("bad profile name")

// UnknownProfileError names a profile that does not exist.
type UnknownProfileError struct{ Name string }

func (e *UnknownProfileError) Error() string {
	return fmt.Sprintf("profile %q does not exist: 'warden profile ls' lists the profiles, 'warden init TOKEN --profile %s' creates it", e.Name, e.Name)
}

var profileName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidProfileName reports whether name may name a profile: letters,
// digits, '.', '_' and '-', starting with a letter or digit.
func ValidProfileName(name string) bool { return profileName.MatchString(name) }

func (s *ProfileStore) settingsFile() string { return filepath.Join(s.Dir, "settings.json") }

func (s *ProfileStore) keyFile(name string) string {
	return filepath.Join(s.Dir, "keys", name+".pem")
}

// Settings reads settings.json; a store that does not exist yet is empty.
func (s *ProfileStore) Settings() (*ProfileSettings, error) {
	set := &ProfileSettings{Profiles: map[string]Profile{}}
	data, err := os.ReadFile(s.settingsFile())
	switch {
	case errors.Is(err, os.ErrNotExist):
		return set, nil
	case err != nil:
		return nil, err
	}
	if err := json.Unmarshal(data, set); err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.settingsFile(), err)
	}
	if set.Profiles == nil {
		set.Profiles = map[string]Profile{}
	}
	return set, nil
}

func (s *ProfileStore) saveSettings(set *ProfileSettings) error {
	data, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(s.settingsFile(), append(data, '\n'))
}

func (set *ProfileSettings) resolve(name string) (string, error) {
	if name == "" {
		name = set.Default
	}
	if name == "" && len(set.Profiles) > 0 {
		return "", fmt.Errorf("%w: 'warden profile set NAME' picks one of %s", ErrNoDefaultProfile, strings.Join(set.Names(), ", "))
	}
	if name == "" {
		return "", ErrNoProfile
	}
	if _, ok := set.Profiles[name]; !ok {
		return "", &UnknownProfileError{Name: name}
	}
	return name, nil
}

// Load returns a profile, with its private key, and its name; an empty
// name loads the default profile.
func (s *ProfileStore) Load(name string) (*Profile, string, error) {
	set, err := s.Settings()
	if err != nil {
		return nil, "", err
	}
	if name, err = set.resolve(name); err != nil {
		return nil, "", err
	}
	p := set.Profiles[name]
	key, err := os.ReadFile(s.keyFile(name))
	if err != nil {
		return nil, "", fmt.Errorf("reading the private key of profile %q: %w", name, err)
	}
	p.PKI.PrivateKey = string(key)
	return &p, name, nil
}

// checkName refuses a name that is not a valid profile name.
func checkName(name string) error {
	if !ValidProfileName(name) {
		return fmt.Errorf("%w %q: a profile name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrBadProfileName, name)
	}
	return nil
}

// CheckWritable reports whether a profile can be saved under name: a valid
// name, taken by no profile (even in another case, which shares a key file
// on case-insensitive file systems), in a store that can be read and
// written. Enrollment spends a single-use token, so this is checked first.
func (s *ProfileStore) CheckWritable(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	set, err := s.Settings()
	if err != nil {
		return err
	}
	for n := range set.Profiles {
		if strings.EqualFold(n, name) {
			return fmt.Errorf("profile %q exists already: remove it with 'warden profile rm %s' or pick another name", n, n)
		}
	}
	if err := os.MkdirAll(filepath.Dir(s.keyFile(name)), 0o700); err != nil {
		return err
	}
	probe, err := os.CreateTemp(filepath.Dir(s.keyFile(name)), ".probe.*")
	if err != nil {
		return fmt.Errorf("the profile store %s is not writable: %w", s.Dir, err)
	}
	probe.Close()
	return os.Remove(probe.Name())
}

// Save stores a profile under name, its private key in a file of mode
// 0600, and makes it the default when there is none.
func (s *ProfileStore) Save(name string, p *Profile) error {
	if err := checkName(name); err != nil {
		return err
	}
	set, err := s.Settings()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.keyFile(name), []byte(p.PKI.PrivateKey)); err != nil {
		return fmt.Errorf("writing the private key: %w", err)
	}
	stored := *p
	stored.PKI.PrivateKey = ""
	set.Profiles[name] = stored
	if set.Default == "" {
		set.Default = name
	}
	return s.saveSettings(set)
}

// SetDefault makes an existing profile the default.
func (s *ProfileStore) SetDefault(name string) error {
	return s.edit(name, func(set *ProfileSettings) { set.Default = name })
}

// Remove deletes a profile and its private key. The name is required:
// an empty one does not mean the default here.
func (s *ProfileStore) Remove(name string) error {
	err := s.edit(name, func(set *ProfileSettings) {
		delete(set.Profiles, name)
		if set.Default == name {
			set.Default = ""
		}
	})
	if err != nil {
		return err
	}
	if err := os.Remove(s.keyFile(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// edit changes the settings of an existing profile, named explicitly.
func (s *ProfileStore) edit(name string, change func(*ProfileSettings)) error {
	if err := checkName(name); err != nil {
		return err
	}
	set, err := s.Settings()
	if err != nil {
		return err
	}
	if _, err := set.resolve(name); err != nil {
		return err
	}
	change(set)
	return s.saveSettings(set)
}
