package imgutil

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Architecture returns the config's architecture.
func (i *CNBImageCore) Architecture() (s string, err error) {
	i.read(func(c *v1.ConfigFile) { s = c.Architecture })
	return s, nil
}

// OS returns the config's OS.
func (i *CNBImageCore) OS() (s string, err error) {
	i.read(func(c *v1.ConfigFile) { s = c.OS })
	return s, nil
}

// OSVersion returns the config's OS version.
func (i *CNBImageCore) OSVersion() (s string, err error) {
	i.read(func(c *v1.ConfigFile) { s = c.OSVersion })
	return s, nil
}

// OSFeatures returns the config's OS features.
func (i *CNBImageCore) OSFeatures() (s []string, err error) {
	i.read(func(c *v1.ConfigFile) { s = slices.Clone(c.OSFeatures) })
	return s, nil
}

// Variant returns the config's architecture variant.
func (i *CNBImageCore) Variant() (s string, err error) {
	i.read(func(c *v1.ConfigFile) { s = c.Variant })
	return s, nil
}

// CreatedAt returns the config's created time.
func (i *CNBImageCore) CreatedAt() (t time.Time, err error) {
	i.read(func(c *v1.ConfigFile) { t = c.Created.Time })
	return t, nil
}

// Entrypoint returns the config's entrypoint.
func (i *CNBImageCore) Entrypoint() (s []string, err error) {
	i.read(func(c *v1.ConfigFile) { s = slices.Clone(c.Config.Entrypoint) })
	return s, nil
}

// WorkingDir returns the config's working directory.
func (i *CNBImageCore) WorkingDir() (s string, err error) {
	i.read(func(c *v1.ConfigFile) { s = c.Config.WorkingDir })
	return s, nil
}

// Env returns the value of the environment variable key, or "".
func (i *CNBImageCore) Env(key string) (s string, err error) {
	i.read(func(c *v1.ConfigFile) {
		for _, kv := range c.Config.Env {
			if k, v, _ := strings.Cut(kv, "="); k == key {
				s = v
			}
		}
	})
	return s, nil
}

// Label returns the value of label key, or "".
func (i *CNBImageCore) Label(key string) (s string, err error) {
	i.read(func(c *v1.ConfigFile) { s = c.Config.Labels[key] })
	return s, nil
}

// Labels returns a copy of the config's labels.
func (i *CNBImageCore) Labels() (m map[string]string, err error) {
	i.read(func(c *v1.ConfigFile) { m = maps.Clone(c.Config.Labels) })
	if m == nil {
		m = map[string]string{}
	}
	return m, nil
}

// History returns the config's history.
//
// With WithHistory it has one entry per layer, as a save writes it: the
// entries of instructions that made no layer are left out (their created
// times are kept until the save).
func (i *CNBImageCore) History() (h []v1.History, err error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	h = slices.Clone(i.cfg.History)
	if i.preserveHistory {
		h = NormalizedHistory(h, len(i.layers))
	}
	return h, nil
}

// ConfigFile returns a copy of the owned config file.
func (i *CNBImageCore) ConfigFile() (cfg *v1.ConfigFile, err error) {
	i.read(func(c *v1.ConfigFile) { cfg = c.DeepCopy() })
	return cfg, nil
}

func (i *CNBImageCore) set(f func(c *v1.ConfigFile)) error {
	return i.MutateConfigFile(f)
}

// SetArchitecture sets the config's architecture.
func (i *CNBImageCore) SetArchitecture(s string) error {
	if err := checkPlatformField("architecture", s); err != nil {
		return err
	}
	return i.set(func(c *v1.ConfigFile) { c.Architecture = s })
}

// checkPlatformField refuses a platform value that is no name: one with a
// "/", "..", white space or control characters (it would make a wrong
// platform string, or a path, downstream).
func checkPlatformField(field, s string) error {
	bad := strings.Contains(s, "/") || strings.Contains(s, "..") ||
		strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0
	if bad {
		return fmt.Errorf("platform %s %q: %w", field, s, errInvalid)
	}
	return nil
}

// SetOS sets the config's OS.
func (i *CNBImageCore) SetOS(s string) error {
	if err := checkPlatformField("os", s); err != nil {
		return err
	}
	return i.set(func(c *v1.ConfigFile) { c.OS = s })
}

// SetOSVersion sets the config's OS version.
func (i *CNBImageCore) SetOSVersion(s string) error {
	if err := checkPlatformField("os version", s); err != nil {
		return err
	}
	return i.set(func(c *v1.ConfigFile) { c.OSVersion = s })
}

// SetOSFeatures sets the config's OS features.
func (i *CNBImageCore) SetOSFeatures(s []string) error {
	return i.set(func(c *v1.ConfigFile) { c.OSFeatures = slices.Clone(s) })
}

// SetVariant sets the config's architecture variant.
func (i *CNBImageCore) SetVariant(s string) error {
	if err := checkPlatformField("variant", s); err != nil {
		return err
	}
	return i.set(func(c *v1.ConfigFile) { c.Variant = s })
}

// SetCmd sets the config's command.
func (i *CNBImageCore) SetCmd(cmd ...string) error {
	return i.set(func(c *v1.ConfigFile) { c.Config.Cmd = slices.Clone(cmd) })
}

// SetEntrypoint sets the config's entrypoint.
func (i *CNBImageCore) SetEntrypoint(ep ...string) error {
	return i.set(func(c *v1.ConfigFile) { c.Config.Entrypoint = slices.Clone(ep) })
}

// SetWorkingDir sets the config's working directory.
func (i *CNBImageCore) SetWorkingDir(dir string) error {
	return i.set(func(c *v1.ConfigFile) { c.Config.WorkingDir = dir })
}

// SetEnv sets the environment variable key to val, in place if it is set.
func (i *CNBImageCore) SetEnv(key, val string) error {
	if key == "" || strings.ContainsRune(key, '=') ||
		strings.IndexFunc(key, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return fmt.Errorf("environment variable name %q: %w", key, errInvalid)
	}
	return i.set(func(c *v1.ConfigFile) {
		for j, kv := range c.Config.Env {
			if k, _, _ := strings.Cut(kv, "="); k == key {
				c.Config.Env[j] = key + "=" + val
				return
			}
		}
		c.Config.Env = append(c.Config.Env, key+"="+val)
	})
}

// SetLabel sets label key to val.
func (i *CNBImageCore) SetLabel(key, val string) error {
	if key == "" {
		return fmt.Errorf("empty label key: %w", errInvalid)
	}
	return i.set(func(c *v1.ConfigFile) {
		if c.Config.Labels == nil {
			c.Config.Labels = map[string]string{}
		}
		c.Config.Labels[key] = val
	})
}

// RemoveLabel removes label key.
func (i *CNBImageCore) RemoveLabel(key string) error {
	return i.set(func(c *v1.ConfigFile) { delete(c.Config.Labels, key) })
}

// SetHistory replaces the config's history.
func (i *CNBImageCore) SetHistory(histories []v1.History) error {
	return i.set(func(c *v1.ConfigFile) { c.History = slices.Clone(histories) })
}
