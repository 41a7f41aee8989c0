// Command fs-kvcache is a KV-cache store on files, the way inference
// engines use 3FS for KVCache (deepseek-ai/3FS README, issues #109, #9):
// each cached prefix's KV bytes are one file, named by a SHA-256 of the
// token prefix; the token-to-file index is kept in memory; reads and writes
// go through the fs client's rings; eviction is plain file deletion (3FS's
// GC reclaims the chunks). The demo serves requests that share system
// prompts and reports the prefix hit rate.
//
//	go run ./examples/fs-kvcache -dir /tmp/kv -requests 500 -capacity 67108864
package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fireflyer-go/fireflyer/fs"
)

func main() {
	dir := flag.String("dir", filepath.Join(os.TempDir(), "fs-kvcache"), "directory for the cache files")
	requests := flag.Int("requests", 500, "requests to serve")
	capacity := flag.Int64("capacity", 64<<20, "cache capacity in bytes; least recently used entries are deleted beyond it")
	backend := flag.String("backend", "auto", "fs backend: auto, hf3fs, uring, posix")
	flag.Parse()
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "fs-kvcache:", err)
		os.Exit(1)
	}
	c, err := fs.Open(context.Background(), *dir, fs.WithBackend(*backend))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fs-kvcache:", err)
		os.Exit(1)
	}
	defer c.Close()
	if err := demo(context.Background(), os.Stdout, c, *requests, *capacity); err != nil {
		fmt.Fprintln(os.Stderr, "fs-kvcache:", err)
		os.Exit(1)
	}
}

// BlockTokens is the prefix granularity: KV is cached for prefixes whose
// length is a multiple of it (a paged KV cache's block).
const BlockTokens = 16

// Key is the SHA-256 of a token prefix (each token as 4 little-endian
// bytes).
type Key [32]byte

// KeyOf hashes a token prefix.
func KeyOf(tokens []int32) Key {
	h := sha256.New()
	var b [4]byte
	for _, t := range tokens {
		binary.LittleEndian.PutUint32(b[:], uint32(t))
		h.Write(b[:])
	}
	var k Key
	h.Sum(k[:0])
	return k
}

// String returns the key in hex.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Store is a KV cache on a directory of an fs.Client: one file per
// prefix, an in-memory LRU index, a byte capacity. Safe for concurrent use.
type Store struct {
	c        *fs.Client
	capacity int64

	mu    sync.Mutex
	index map[Key]*entry
	head  entry // LRU list sentinel: head.next is the most recent
	used  int64
	stats Stats
}

type entry struct {
	key        Key
	size       int64
	prev, next *entry
}

// Stats counts the store's activity.
type Stats struct {
	Puts, Hits, Misses, Evictions int64
	Bytes                         int64 // bytes held now
}

// ErrMiss: no entry for the key.
var ErrMiss = errors.New("fs-kvcache: miss")

// Open returns a store over the Client's root, indexing the *.kv files
// already there (their names are the keys) in directory order.
func Open(c *fs.Client, capacity int64) (*Store, error) {
	if capacity <= 0 {
		return nil, fmt.Errorf("capacity %d must be > 0", capacity)
	}
	s := &Store{c: c, capacity: capacity, index: map[Key]*entry{}}
	s.head.next, s.head.prev = &s.head, &s.head
	ents, err := os.ReadDir(c.Root())
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".kv")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		raw, err := hex.DecodeString(name)
		if err != nil || len(raw) != len(Key{}) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		var k Key
		copy(k[:], raw)
		en := &entry{key: k, size: info.Size()}
		s.index[k] = en
		s.pushFront(en)
		s.used += en.size
	}
	return s, nil
}

func fileName(k Key) string { return k.String() + ".kv" }

func (s *Store) pushFront(e *entry) {
	e.prev, e.next = &s.head, s.head.next
	s.head.next.prev = e
	s.head.next = e
}

func (s *Store) unlink(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

// Put stores kv for the token prefix. The bytes go to a temporary file
// through a write ring, are fsynced (on 3FS that publishes the length) and
// renamed into place, so a concurrent Get sees the old entry or the new
// one, never a torn one. Then least recently used entries are deleted
// until the store fits its capacity.
func (s *Store) Put(ctx context.Context, tokens []int32, kv []byte) error {
	if len(kv) == 0 {
		return fmt.Errorf("Put: empty kv for a %d-token prefix", len(tokens))
	}
	k := KeyOf(tokens)
	tmp := fmt.Sprintf("%s.%d.tmp", k, rand.Uint64())
	f, err := s.c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(kv, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	root := s.c.Root()
	if err == nil {
		err = os.Rename(filepath.Join(root, tmp), filepath.Join(root, fileName(k)))
	}
	if err != nil {
		os.Remove(filepath.Join(root, tmp))
		return err
	}
	s.mu.Lock()
	if old := s.index[k]; old != nil {
		s.unlink(old)
		s.used -= old.size
	}
	e := &entry{key: k, size: int64(len(kv))}
	s.index[k] = e
	s.pushFront(e)
	s.used += e.size
	s.stats.Puts++
	var victims []Key
	for s.used > s.capacity && s.head.prev != e {
		v := s.head.prev
		s.unlink(v)
		delete(s.index, v.key)
		s.used -= v.size
		s.stats.Evictions++
		victims = append(victims, v.key)
	}
	s.mu.Unlock()
	for _, v := range victims {
		// Eviction is deletion. An open reader keeps its data.
		if err := os.Remove(filepath.Join(root, fileName(v))); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// Get returns the KV bytes cached for exactly this token prefix, read
// through the client's read rings. Errors: ErrMiss.
func (s *Store) Get(ctx context.Context, tokens []int32) ([]byte, error) {
	k := KeyOf(tokens)
	s.mu.Lock()
	e := s.index[k]
	if e == nil {
		s.stats.Misses++
		s.mu.Unlock()
		return nil, ErrMiss
	}
	s.unlink(e)
	s.pushFront(e)
	s.mu.Unlock()
	f, err := s.c.OpenFile(fileName(k), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) { // evicted meanwhile
		s.mu.Lock()
		s.stats.Misses++
		s.mu.Unlock()
		return nil, ErrMiss
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	out := make([]byte, size)
	if _, err := f.ReadAt(out, 0); err != nil && err != io.EOF {
		return nil, err
	}
	s.mu.Lock()
	s.stats.Hits++
	s.mu.Unlock()
	return out, nil
}

// Match returns the longest cached prefix of tokens whose length is a
// multiple of BlockTokens, with its KV bytes; n is 0 on a full miss.
func (s *Store) Match(ctx context.Context, tokens []int32) (n int, kv []byte, err error) {
	for n = len(tokens) / BlockTokens * BlockTokens; n > 0; n -= BlockTokens {
		kv, err = s.Get(ctx, tokens[:n])
		if err == nil {
			return n, kv, nil
		}
		if !errors.Is(err, ErrMiss) {
			return 0, nil, err
		}
	}
	return 0, nil, nil
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Bytes = s.used
	return st
}

// kvBytesPerToken is the demo's KV size per token (a small model's
// compressed latent KV).
const kvBytesPerToken = 1024

// fakeKV derives deterministic KV bytes for a prefix, so hits can be
// checked.
func fakeKV(tokens []int32) []byte {
	k := KeyOf(tokens)
	b := make([]byte, len(tokens)*kvBytesPerToken)
	r := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(k[:]), 1))
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}

// demo serves requests made of one of a few system prompts plus a user
// turn: a hit reuses the longest cached prefix, then the whole prompt's
// KV is stored.
func demo(ctx context.Context, w io.Writer, c *fs.Client, requests int, capacity int64) error {
	if requests < 1 {
		// The report's reuse percentage is over the requests' tokens (it
		// used to print NaN% for 0 requests).
		return fmt.Errorf("-requests %d must be ≥ 1", requests)
	}
	s, err := Open(c, capacity)
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(5, 6))
	systems := make([][]int32, 4)
	for i := range systems {
		systems[i] = make([]int32, 64*(i+1))
		for j := range systems[i] {
			systems[i][j] = int32(r.IntN(32000))
		}
	}
	var reused, total int64
	for range requests {
		sys := systems[r.IntN(len(systems))]
		prompt := append(append([]int32(nil), sys...), make([]int32, BlockTokens*(1+r.IntN(4)))...)
		for j := len(sys); j < len(prompt); j++ {
			prompt[j] = int32(r.IntN(32000))
		}
		n, kv, err := s.Match(ctx, prompt)
		if err != nil {
			return err
		}
		if n > 0 && string(kv) != string(fakeKV(prompt[:n])) {
			return fmt.Errorf("KV for a %d-token prefix differs from what was stored", n)
		}
		reused += int64(n)
		total += int64(len(prompt))
		if err := s.Put(ctx, sys, fakeKV(sys)); err != nil {
			return err
		}
		if err := s.Put(ctx, prompt, fakeKV(prompt)); err != nil {
			return err
		}
	}
	st := s.Stats()
	fmt.Fprintf(w, "backend %s: %d requests, %.1f%% of prompt tokens reused from cache, %d puts, %d hits, %d misses, %d evictions, %.1f MiB held\n",
		c.Backend(), requests, 100*float64(reused)/float64(total), st.Puts, st.Hits, st.Misses, st.Evictions, float64(st.Bytes)/(1<<20))
	return nil
}
