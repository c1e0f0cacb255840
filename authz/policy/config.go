package policy

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultMaxTemplatesPerTopicSpace is Event Grid's limit of topic templates
// per topic space (SPEC 3.1).
const DefaultMaxTemplatesPerTopicSpace = 10

// Config is the "policy:" section of SPEC 7. The yaml and mapstructure tags
// are the camelCase keys of the configuration file.
type Config struct {
	// Namespace is the resource id of the Event Grid namespace this proxy
	// stands for, /subscriptions/{s}/resourceGroups/{rg}/providers/
	// Microsoft.EventGrid/namespaces/{ns} (compared case-insensitively, as
	// Azure does). Only assignments whose scope contains it or one of its
	// topic spaces grant anything (SPEC 3.3). Required; no default.
	Namespace string `yaml:"namespace" mapstructure:"namespace"`
	// Files are policy files: native YAML or JSON, or az CLI JSON exports
	// (role assignment list, topic-space list). They are merged in order.
	// Required; default: none.
	Files []string `yaml:"files" mapstructure:"files"`
	// MaxTemplatesPerTopicSpace bounds the topic templates of one topic
	// space. Default: 10 (Event Grid's limit); 0 means the default.
	MaxTemplatesPerTopicSpace int `yaml:"maxTemplatesPerTopicSpace" mapstructure:"maxTemplatesPerTopicSpace"`
}

// DefaultConfig returns the defaults of SPEC 7. Namespace and Files have no
// default and must be set.
func DefaultConfig() Config {
	return Config{MaxTemplatesPerTopicSpace: DefaultMaxTemplatesPerTopicSpace}
}

// Validate returns every problem of c with its key path (policy.namespace:
// …), joined into one error, or nil (STYLE 20). It does no I/O; Load reads
// and validates the files.
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("policy.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Namespace == "" {
		add("namespace", "must be set to the resource id of the Event Grid namespace")
	} else if sc, err := parseScope(c.Namespace); err != nil || sc.kind != scopeNamespace {
		add("namespace", "%q is not of the form /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.EventGrid/namespaces/{ns}", c.Namespace)
	}
	if len(c.Files) == 0 {
		add("files", "at least one policy file is required")
	}
	for i, f := range c.Files {
		if strings.TrimSpace(f) == "" {
			add(fmt.Sprintf("files[%d]", i), "empty path")
		}
	}
	if c.MaxTemplatesPerTopicSpace < 0 {
		add("maxTemplatesPerTopicSpace", "must not be negative, got %d", c.MaxTemplatesPerTopicSpace)
	}
	return errors.Join(errs...)
}

// maxTemplates returns the effective template limit.
func (c *Config) maxTemplates() int {
	if c.MaxTemplatesPerTopicSpace == 0 {
		return DefaultMaxTemplatesPerTopicSpace
	}
	return c.MaxTemplatesPerTopicSpace
}
