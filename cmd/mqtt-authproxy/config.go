package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
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
	cfg, err := decodeConfig(f)
	if err != nil {
		return proxy.Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return proxy.Config{}, fmt.Errorf("invalid config:\n%w", err)
	}
	return cfg, nil
}

// decodeConfig is loadConfig without the validation.
func decodeConfig(f commonFlags) (proxy.Config, error) {
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
	hooks := viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(durationsNeedAUnit,
		mapstructure.StringToTimeDurationHookFunc(), mapstructure.StringToSliceHookFunc(","))) // viper's two, after ours
	if err := v.UnmarshalExact(&cfg, hooks); err != nil {
		return proxy.Config{}, fmt.Errorf("decode config: %w", err)
	}
	return cfg, nil
}

// durationsNeedAUnit refuses a bare number other than 0 for a duration:
// YAML's `dialTimeout: 5` would otherwise be 5 nanoseconds, which passes
// every check and then times out every dial.
func durationsNeedAUnit(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[time.Duration]() {
		return data, nil
	}
	switch from.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		if reflect.ValueOf(data).IsZero() {
			return data, nil
		}
		return nil, fmt.Errorf("duration %v has no unit: write it as e.g. \"%vs\" or \"%vms\"", data, data, data)
	}
	return data, nil
}

// auditLogHelp documents serve's and dev's --audit-log.
const auditLogHelp = "audit log, JSON lines whatever --log-format and --log-level say: stderr, off, or a file to append to (./stderr for a file of that name)"

// processLogs are the process's loggers: the process log (--log-format,
// --log-level) and the audit log (SPEC 6: slog JSON, one line per
// authentication result, denial and disconnect, at every --log-level).
// Both write through logsink Writers: no line, not even an audit line from
// the event loop, waits for its output, and lines an output cannot take in
// time are dropped and counted (Dropped), with an error line in the process
// log once it takes lines again. Close before exiting.
type processLogs struct {
	log   *slog.Logger
	audit io.Writer // nil: no audit log
	sinks []*logsink.Writer
	file  *os.File // the audit file, if any
}

// newProcessLogs builds the process log on w and the audit log on
// auditDest: "stderr" (w, between the process log's lines), "off", or a
// file path, appended to (created 0600).
func newProcessLogs(w io.Writer, format, level, auditDest string) (*processLogs, error) {
	p := &processLogs{}
	sink := p.newSink(w)
	log, err := newLogger(sink, format, level)
	if err != nil {
		_ = p.Close()
		return nil, err
	}
	p.log = log
	switch auditDest {
	case "off":
	case "stderr", "":
		p.audit = sink
	default:
		f, err := os.OpenFile(auditDest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			_ = p.Close()
			return nil, fmt.Errorf("--audit-log: %w", err)
		}
		p.file = f
		p.audit = p.newSink(f)
	}
	return p, nil
}

// newSink starts a logsink.Writer over w whose drops p.log reports.
func (p *processLogs) newSink(w io.Writer) *logsink.Writer {
	sink := logsink.New(w, logsink.Options{OnDrop: func(n uint64) {
		// Error: the notice must pass every --log-level.
		p.log.Error("log lines dropped: the log output did not take them in time", "lines", n)
	}})
	p.sinks = append(p.sinks, sink)
	return sink
}

// Dropped is the number of lines dropped by either log's output.
func (p *processLogs) Dropped() uint64 {
	var n uint64
	for _, s := range p.sinks {
		n += s.Dropped()
	}
	return n
}

// Close writes out what is pending (the audit file's first, as its drops
// are reported in the process log) and closes the audit file.
func (p *processLogs) Close() error {
	var errs []error
	for _, s := range slices.Backward(p.sinks) {
		errs = append(errs, s.Close())
	}
	if p.file != nil {
		errs = append(errs, p.file.Close())
	}
	return errors.Join(errs...)
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

// upstreamPassword is upstream.password, or else upstream.passwordFile's.
func upstreamPassword(c proxy.UpstreamConfig) (proxy.Secret, error) {
	if c.Password != "" {
		return proxy.Secret(c.Password), nil
	}
	return readSecretFile(c.PasswordFile)
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
