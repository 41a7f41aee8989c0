package jit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fireflyer-go/fireflyer/cuda"
)

// Environment variables, mirroring DeepGEMM's DG_JIT_CACHE_DIR and
// DG_JIT_PRINT_COMPILER_COMMAND.
const (
	// EnvCacheDir overrides the cache directory.
	EnvCacheDir = "FIREFLYER_JIT_CACHE_DIR"
	// EnvPrintCompilerCommand, set to 1, prints every compilation (NVRTC
	// version, source, name expression, options, cache file) to stderr.
	EnvPrintCompilerCommand = "FIREFLYER_JIT_PRINT_COMPILER_COMMAND"
)

// ErrRequest reports a malformed compile request; the message names the
// field.
var ErrRequest = errors.New("jit: bad request")

// Backend compiles one program; *cuda.NVRTC implements it, and tests use a
// fake.
type Backend interface {
	Version() (major, minor int)
	Compile(p cuda.Program) (*cuda.Compiled, error)
}

// Source is a kernel source file: self-contained CUDA C++ (no includes).
type Source struct {
	Name string // file name, e.g. "fp8_gemm.cu"
	Code string
}

// Request asks for one kernel instance compiled for one architecture.
type Request struct {
	Source   Source
	Instance Instance // the __global__ template and its arguments
	Arch     string   // NVRTC architecture, e.g. "sm_90a" (cuda.DeviceInfo.Arch)
	Flags    []string // options added after the defaults (DefaultFlags)
}

// DefaultFlags are the NVRTC options every compilation gets, after
// --gpu-architecture: C++17 and device code by default (as DeepGEMM's NVRTC
// path), no fast math (results are checked against float64 references).
var DefaultFlags = []string{"-std=c++17", "-default-device", "-DNDEBUG"}

// Options returns the full NVRTC option list of r.
func (r Request) Options() []string {
	o := []string{"--gpu-architecture=" + r.Arch}
	o = append(o, DefaultFlags...)
	return append(o, r.Flags...)
}

func (r Request) validate() error {
	switch {
	case r.Source.Code == "":
		return fmt.Errorf("%w: Source.Code is empty", ErrRequest)
	case !validName(r.Instance.Name):
		return fmt.Errorf("%w: Instance.Name %q is not a C++ name", ErrRequest, r.Instance.Name)
	case !strings.HasPrefix(r.Arch, "sm_") && !strings.HasPrefix(r.Arch, "compute_"):
		return fmt.Errorf("%w: Arch %q is not sm_XX or compute_XX", ErrRequest, r.Arch)
	}
	if _, err := ParseInstance(r.Instance.String()); err != nil {
		return fmt.Errorf("%w: Instance: %v", ErrRequest, err)
	}
	return nil
}

// Key returns the cache key of r compiled by NVRTC version major.minor: the
// SHA-256 (hex) of the source name and text, the name expression, the NVRTC
// version, the architecture and the options, each length-prefixed.
func Key(r Request, major, minor int) string {
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field("fireflyer-jit-v1")
	field(r.Source.Name)
	field(r.Source.Code)
	field(r.Instance.String())
	field(fmt.Sprintf("nvrtc-%d.%d", major, minor))
	field(r.Arch)
	for _, o := range r.Options() {
		field(o)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Kernel is a compiled kernel instance.
type Kernel struct {
	Key     string // cache key (Key)
	Image   []byte // CUBIN (PTX for compute_XX architectures)
	Lowered string // mangled name for cuModuleGetFunction
	Path    string // cache file
	Cached  bool   // read from the disk cache rather than compiled now
	Log     string // compiler warnings, when compiled now
}

// Compiler compiles kernel instances with a Backend and caches them on
// disk, one file per key, so a later process (or another rank) reuses
// them. Compile is safe for concurrent use; concurrent requests for one key
// in a process compile once.
//
// Upstream: DeepGEMM csrc/jit/compiler.hpp (hash of name, signature, flags
// and code; cache under DG_JIT_CACHE_DIR; write then atomic rename).
type Compiler struct {
	backend Backend
	dir     string
	print   io.Writer

	mu       sync.Mutex
	inflight map[string]*flight
}

type flight struct {
	done chan struct{}
	k    *Kernel
	err  error
}

// Config configures a Compiler. The zero value uses the environment.
type Config struct {
	// CacheDir is the cache directory; "" means $FIREFLYER_JIT_CACHE_DIR,
	// else <os.UserCacheDir>/fireflyer/jit.
	CacheDir string
	// Print receives one line per compilation; nil means stderr when
	// FIREFLYER_JIT_PRINT_COMPILER_COMMAND=1, else nothing.
	Print io.Writer
}

// New returns a Compiler using backend b.
func New(b Backend, cfg Config) (*Compiler, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: nil Backend", ErrRequest)
	}
	dir := cfg.CacheDir
	if dir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	p := cfg.Print
	if p == nil && os.Getenv(EnvPrintCompilerCommand) == "1" {
		p = os.Stderr
	}
	return &Compiler{backend: b, dir: dir, print: p, inflight: map[string]*flight{}}, nil
}

// DefaultCacheDir returns $FIREFLYER_JIT_CACHE_DIR, else
// <os.UserCacheDir>/fireflyer/jit.
func DefaultCacheDir() (string, error) {
	if dir := os.Getenv(EnvCacheDir); dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("jit: no cache directory (set %s): %w", EnvCacheDir, err)
	}
	return filepath.Join(base, "fireflyer", "jit"), nil
}

// CacheEntries returns the cache files in dir (kernel.<name>.<key>.bin),
// sorted; a missing directory has none.
func CacheEntries(dir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "kernel.*.bin"))
	if err != nil {
		return nil, err
	}
	sort.Strings(m)
	return m, nil
}

var (
	sysOnce sync.Once
	sysComp *Compiler
	sysErr  error
)

// System returns a process-wide Compiler over the system NVRTC with the
// environment's configuration; without NVRTC the error wraps
// cuda.ErrUnavailable.
func System() (*Compiler, error) {
	sysOnce.Do(func() {
		n, err := cuda.SystemNVRTC()
		if err != nil {
			sysErr = err
			return
		}
		sysComp, sysErr = New(n, Config{})
	})
	return sysComp, sysErr
}

// Dir returns the cache directory.
func (c *Compiler) Dir() string { return c.dir }

// Path returns the cache file of key for a kernel named name.
func (c *Compiler) Path(name, key string) string {
	return filepath.Join(c.dir, "kernel."+sanitize(name)+"."+key+".bin")
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 && isIdent(byte(r)) || r == '-' {
			return r
		}
		return '_'
	}, s)
}

// Compile returns the kernel for r: from the disk cache when a valid entry
// exists, else compiled by the backend and written to the cache (to a
// temporary file, synced, then renamed over the final name, so readers in
// other processes see either no file or a whole one). A corrupt cache file
// is recompiled and replaced. Compilation errors carry NVRTC's log.
func (c *Compiler) Compile(r Request) (*Kernel, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	maj, min := c.backend.Version()
	key := Key(r, maj, min)
	c.mu.Lock()
	if f, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		<-f.done
		return f.k, f.err
	}
	f := &flight{done: make(chan struct{})}
	c.inflight[key] = f
	c.mu.Unlock()

	f.k, f.err = c.compile(r, key, maj, min)
	close(f.done)
	if f.err != nil { // let a later call retry
		c.mu.Lock()
		delete(c.inflight, key)
		c.mu.Unlock()
	}
	return f.k, f.err
}

func (c *Compiler) compile(r Request, key string, maj, min int) (*Kernel, error) {
	path := c.Path(r.Instance.Name, key)
	if data, err := os.ReadFile(path); err == nil {
		if lowered, image, err := decodeEntry(data); err == nil {
			return &Kernel{Key: key, Image: image, Lowered: lowered, Path: path, Cached: true}, nil
		} else if c.print != nil {
			fmt.Fprintf(c.print, "fireflyer jit: cache file %s is invalid (%v); recompiling\n", path, err)
		}
	}
	expr := r.Instance.String()
	opts := r.Options()
	if c.print != nil {
		fmt.Fprintf(c.print, "fireflyer jit: NVRTC %d.%d compile %s %q %s -> %s\n", maj, min, r.Source.Name, expr, strings.Join(opts, " "), path)
	}
	start := time.Now()
	out, err := c.backend.Compile(cuda.Program{
		Name: r.Source.Name, Source: r.Source.Code, Options: opts,
		NameExpressions: []string{expr}, PTX: strings.HasPrefix(r.Arch, "compute_"),
	})
	if err != nil {
		return nil, fmt.Errorf("jit: compile %s %s: %w", r.Source.Name, expr, err)
	}
	lowered := out.Lowered[expr]
	if lowered == "" {
		return nil, fmt.Errorf("jit: compile %s: NVRTC reported no lowered name for %s", r.Source.Name, expr)
	}
	if c.print != nil {
		fmt.Fprintf(c.print, "fireflyer jit: compiled %s in %.2fs (%d bytes)\n", expr, time.Since(start).Seconds(), len(out.Image))
	}
	k := &Kernel{Key: key, Image: out.Image, Lowered: lowered, Path: path, Log: out.Log}
	if err := WriteAtomic(path, encodeEntry(lowered, out.Image)); err != nil {
		return nil, fmt.Errorf("jit: cache %s: %w", path, err)
	}
	return k, nil
}

// Warmup compiles every request (reading the cache where it can), so that
// later launches pay no compilation; it returns all errors joined.
func (c *Compiler) Warmup(rs ...Request) error {
	var errs []error
	for _, r := range rs {
		if _, err := c.Compile(r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Cache entry format: magic, uvarint-prefixed lowered name and image, then
// the SHA-256 of everything before it.
const entryMagic = "FFJIT1\n"

var errCorrupt = errors.New("corrupt cache entry")

func encodeEntry(lowered string, image []byte) []byte {
	b := []byte(entryMagic)
	b = binary.AppendUvarint(b, uint64(len(lowered)))
	b = append(b, lowered...)
	b = binary.AppendUvarint(b, uint64(len(image)))
	b = append(b, image...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func decodeEntry(b []byte) (string, []byte, error) {
	if len(b) < len(entryMagic)+sha256.Size || !bytes.HasPrefix(b, []byte(entryMagic)) {
		return "", nil, errCorrupt
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if s := sha256.Sum256(body); !bytes.Equal(s[:], sum) {
		return "", nil, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	rest := body[len(entryMagic):]
	n, w := binary.Uvarint(rest)
	if w <= 0 || n > uint64(len(rest)-w) {
		return "", nil, errCorrupt
	}
	lowered := string(rest[w : w+int(n)])
	rest = rest[w+int(n):]
	n, w = binary.Uvarint(rest)
	if w <= 0 || n != uint64(len(rest)-w) {
		return "", nil, errCorrupt
	}
	return lowered, rest[w:], nil
}

// WriteAtomic writes data to path so that concurrent readers (in any
// process) see either the old file, no file, or the whole new one: it
// writes a temporary file in the same directory, syncs it, renames it over
// path and syncs the directory. Concurrent writers of the same path each
// rename a whole file; the last rename wins.
func WriteAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(name, 0o644); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: make the rename durable
		d.Close()
	}
	return nil
}
