package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/mqtt-authproxy/mqtt-authproxy/proxy"
	"github.com/mqtt-authproxy/mqtt-authproxy/proxy/logsink"
)

// commonFlags are the flags every config-reading subcommand takes.
type commonFlags struct {
	config    string
	sets      []string
	logFormat string
	logLevel  string
}

func (f *commonFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "configuration file (YAML)")
	fs.StringArrayVar(&f.sets, "set", nil, "override a setting: key.path=value (repeatable)")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
}

// loadConfig reads the configuration: defaults, then the YAML file, then
// MQTT_AUTHPROXY_* environment variables, then --set flags. Unknown keys are
// errors so typos fail (STYLE 33), and the result is validated because
// viper's decoding is weakly typed.
func loadConfig(f commonFlags) (proxy.Config, error) {
	v := viper.NewWithOptions(viper.ExperimentalBindStruct())
	v.SetEnvPrefix("MQTT_AUTHPROXY")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if f.config != "" {
		v.SetConfigFile(f.config)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return proxy.Config{}, fmt.Errorf("read config %s: %w", f.config, err)
		}
	}
	for _, s := range f.sets {
		key, val, ok := strings.Cut(s, "=")
		if !ok || key == "" {
			return proxy.Config{}, fmt.Errorf("--set %q: want key.path=value", s)
		}
		v.Set(key, val)
	}
	cfg := proxy.DefaultConfig()
	if err := v.UnmarshalExact(&cfg); err != nil {
		return proxy.Config{}, fmt.Errorf("decode config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return proxy.Config{}, fmt.Errorf("invalid config:\n%w", err)
	}
	return cfg, nil
}

// newProcessLogger builds the process logger on a logsink.Writer over w:
// no line, not even an audit line from the event loop, waits for w, and
// lines w cannot take in time are dropped and counted (sink.Dropped), with
// an error line once it takes lines again. Close the sink before exiting.
func newProcessLogger(w io.Writer, format, level string) (*slog.Logger, *logsink.Writer, error) {
	var log *slog.Logger
	sink := logsink.New(w, logsink.Options{OnDrop: func(n uint64) {
		// Error: the notice must pass every --log-level.
		log.Error("log lines dropped: the log output did not take them in time", "lines", n)
	}})
	log, err := newLogger(sink, format, level)
	if err != nil {
		_ = sink.Close()
		return nil, nil, err
	}
	return log, sink, nil
}

// newLogger builds the process logger (STYLE 27: text for a terminal, JSON
// for machines).
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// readSecretFile reads a password file, trimming one trailing newline.
func readSecretFile(path string) (proxy.Secret, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read upstream.passwordFile: %w", err)
	}
	return proxy.Secret(strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")), nil
}
