//go:build linux

package fs

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fireflyer-go/fireflyer/internal/hf3fs"
)

// 3FS constants (src/lib/api/hf3fs_usrbio.h, src/fuse/FuseOps.cc).
const (
	hf3fsSuperMagic  = 0x8f3f5fff
	hf3fsIocGetMagic = 0x80046802 // _IOR('h', 2, uint32)
	shmDir           = "/dev/shm"
	// hf3fsJitter bounds one block on the ring's completion semaphore, as
	// HF3FS_USRBIO_WAIT_JITTER_MS does upstream: Wait re-checks the ring
	// and its context at least this often.
	hf3fsJitter = time.Millisecond
	// sqFullWait bounds how long a submit waits for SQ space that the
	// daemon frees when an earlier, slower batch finishes.
	sqFullWait = 5 * time.Second
)

// hf3fsBackend speaks USRBIO to the 3FS FUSE daemon: buffers and rings are
// /dev/shm files registered by symlinks under <mp>/3fs-virt/iovs, requests
// go through the ring's shared queues, submissions are announced on the
// daemon's per-priority semaphore, and completions come back with the
// ring's own semaphore.
type hf3fsBackend struct {
	mp         string
	iovs       string
	dev        uint64
	check      func(fd int) error
	mode       uint32
	registered func(string) error
	ioctl      func(fd int, req uint, arg []byte) error
	virt       *virtThread

	// dead is set once the daemon is seen gone (its submit-ios link
	// vanished or the mount answers ENOTCONN): I/O in flight then
	// completes with ENOTCONN and new submissions fail.
	dead      atomic.Bool
	checkMu   sync.Mutex
	lastCheck time.Time
	probing   bool           // a liveness probe is running
	probes    sync.WaitGroup // the probe goroutine, waited for by Close

	semMu sync.Mutex
	sems  [3]*submitSem
}

type submitSem struct {
	mem []byte
	sem *hf3fs.Sem
}

func newHF3FSBackend(root, mp string, o HF3FSOpts) (*hf3fsBackend, error) {
	if !filepath.IsAbs(mp) || filepath.Clean(mp) != mp {
		return nil, fmt.Errorf("%w: hf3fs mount point %q must be absolute and clean", ErrInvalid, mp)
	}
	if o.ShmMode&^0o777 != 0 {
		return nil, fmt.Errorf("%w: hf3fs ShmMode %v has bits beyond 0777", ErrInvalid, o.ShmMode)
	}
	mode := uint32(o.ShmMode.Perm())
	if mode == 0 {
		mode = 0o600
	}
	var st unix.Stat_t
	if err := unix.Stat(mp, &st); err != nil {
		return nil, fmt.Errorf("fs: hf3fs mount point %s: %w", mp, err)
	}
	b := &hf3fsBackend{
		mp:         mp,
		iovs:       filepath.Join(mp, "3fs-virt", "iovs"),
		dev:        st.Dev,
		check:      o.CheckFile,
		mode:       mode,
		registered: o.Registered,
		ioctl:      o.Ioctl,
	}
	if b.ioctl == nil {
		b.ioctl = sysIoctl
	}
	if b.check == nil {
		b.check = checkMagic
	}
	v, err := startVirt(mp)
	if err != nil {
		return nil, err
	}
	b.virt = v
	return b, nil
}

// checkMagic is reg_fd's test: the HF3FS_IOC_GET_MAGIC_NUM ioctl.
func checkMagic(fd int) error {
	m, err := unix.IoctlGetUint32(fd, hf3fsIocGetMagic)
	if err != nil {
		return fmt.Errorf("%w: HF3FS_IOC_GET_MAGIC_NUM: %v", ErrNotHF3FS, err)
	}
	if m != hf3fsSuperMagic {
		return fmt.Errorf("%w: magic %#x, want %#x", ErrNotHF3FS, m, hf3fsSuperMagic)
	}
	return nil
}

// Features implements Backend.
func (b *hf3fsBackend) Features() Features {
	return Features{Backend: "hf3fs", ZeroCopy: true, FixedBuffers: true, FixedFiles: true, Priorities: true, ForbidReadHoles: true}
}

// Close implements Backend.
func (b *hf3fsBackend) Close() error {
	b.semMu.Lock()
	var errs []error
	for i, s := range b.sems {
		if s != nil {
			errs = append(errs, unix.Munmap(s.mem))
			b.sems[i] = nil
		}
	}
	b.semMu.Unlock()
	errs = append(errs, b.virt.stop())
	b.probes.Wait()
	return errors.Join(errs...)
}

// hf3fsFile is a registered file: the descriptor (kept open, the daemon
// only finds inodes the kernel has looked up) and its 3FS inode id.
type hf3fsFile struct {
	osFile
	ino   uint64
	ioctl func(fd int, req uint, arg []byte) error
}

// OpenFile implements Backend: open, then reg_fd's checks.
func (b *hf3fsBackend) OpenFile(name string, flag int, perm os.FileMode) (BackendFile, error) {
	o, err := openOS(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return b.adopt(o, name)
}

// RegisterFile implements Backend (hf3fs_reg_fd).
func (b *hf3fsBackend) RegisterFile(f *os.File) (BackendFile, error) {
	o, err := dupOS(f)
	if err != nil {
		return nil, err
	}
	return b.adopt(o, f.Name())
}

// adopt runs reg_fd's checks on an open file: the file system check, the
// device of the mount, and statx for the inode id (the FUSE inode number
// is the 3FS inode id).
func (b *hf3fsBackend) adopt(o *osFile, name string) (BackendFile, error) {
	fail := func(err error) (BackendFile, error) {
		o.Close()
		return nil, &os.PathError{Op: "register", Path: name, Err: err}
	}
	if err := b.check(o.fdn); err != nil {
		if !errors.Is(err, ErrNotHF3FS) {
			err = fmt.Errorf("%w: %v", ErrNotHF3FS, err)
		}
		return fail(err)
	}
	var stx unix.Statx_t
	if err := unix.Statx(o.fdn, "", unix.AT_EMPTY_PATH, unix.STATX_INO|unix.STATX_TYPE, &stx); err != nil {
		return fail(err)
	}
	if unix.Mkdev(stx.Dev_major, stx.Dev_minor) != b.dev {
		return fail(fmt.Errorf("%w: file is on another device than mount %s", ErrNotHF3FS, b.mp))
	}
	if stx.Mode&unix.S_IFMT != unix.S_IFREG {
		return fail(fmt.Errorf("%w: not a regular file", ErrInvalid))
	}
	return &hf3fsFile{osFile: *o, ino: stx.Ino, ioctl: b.ioctl}, nil
}

// newID returns a random version 4 UUID.
func newID() [16]byte {
	var id [16]byte
	_, _ = rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// createShm creates path (which must not exist; O_EXCL|O_NOFOLLOW) with
// the backend's mode, sizes it to n bytes and maps it shared.
func (b *hf3fsBackend) createShm(path string, n int) ([]byte, error) {
	return createShmFile(path, n, n, b.mode, -1)
}

// link registers target under key with the daemon: symlinkat from the
// virt thread, then the Registered hook.
func (b *hf3fsBackend) link(target string, key hf3fs.Key) error {
	name := key.String()
	if _, err := hf3fs.ParseKey(name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := b.virt.do(func(dirfd int) error { return unix.Symlinkat(target, dirfd, name) }); err != nil {
		return fmt.Errorf("fs: hf3fs: register %s: %w", name, err)
	}
	if b.registered != nil {
		if err := b.registered(filepath.Join(b.iovs, name)); err != nil {
			b.unlink(name)
			return fmt.Errorf("fs: hf3fs: register %s: %w", name, err)
		}
	}
	return nil
}

func (b *hf3fsBackend) unlink(name string) error {
	return b.virt.do(func(dirfd int) error { return unix.Unlinkat(dirfd, name, 0) })
}

// MapBuffer implements Backend: hf3fs_iovcreate, a /dev/shm file
// registered with the daemon (bound to s.Node before the daemon or anyone
// touches it, when s.Node >= 0). The shm file keeps its name until the
// buffer is closed.
func (b *hf3fsBackend) MapBuffer(s BufferSpec) ([]byte, func() error, error) {
	path := shmDir + "/hf3fs-iov-" + hf3fs.UUID(newID())
	mode := b.mode
	if s.Mode != 0 {
		mode = shmMode(s.Mode)
	}
	mem, err := createShmFile(path, s.Size, s.Len, mode, s.Node)
	if err != nil {
		return nil, nil, err
	}
	key := hf3fs.Key{ID: s.ID, BlockSize: int64(s.BlockSize)}
	if err := b.link(path, key); err != nil {
		unix.Munmap(mem)
		unix.Unlink(path)
		return nil, nil, err
	}
	name := key.String()
	release := func() error {
		e1 := b.unlink(name)
		e2 := unix.Munmap(mem)
		e3 := unix.Unlink(path)
		return errors.Join(e1, e2, e3)
	}
	return mem, release, nil
}

// submitSem maps the daemon's submit semaphore for a priority, found by
// reading the iovs/submit-ios[.ph|.pl] link. The target must be a regular
// file directly under /dev/shm named sem.*; it is opened O_NOFOLLOW.
func (b *hf3fsBackend) submitSem(prio int) (*hf3fs.Sem, error) {
	b.semMu.Lock()
	defer b.semMu.Unlock()
	if s := b.sems[prio]; s != nil {
		return s.sem, nil
	}
	name := "submit-ios" + [3]string{".ph", "", ".pl"}[prio]
	var target string
	err := b.virt.do(func(dirfd int) error {
		buf := make([]byte, 4096)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return err
		}
		target = string(buf[:n])
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fs: hf3fs: read %s/%s (is %s a 3FS mount root?): %w", b.iovs, name, b.mp, err)
	}
	base := filepath.Base(target)
	if filepath.Clean(target) != target || filepath.Dir(target) != shmDir || !strings.HasPrefix(base, "sem.") {
		return nil, fmt.Errorf("%w: %s points to %q, not a semaphore under %s", ErrInvalid, name, target, shmDir)
	}
	fd, err := unix.Open(target, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: target, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: target, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size < hf3fs.SemSize {
		return nil, fmt.Errorf("%w: %s is not a %d-byte semaphore file", ErrInvalid, target, hf3fs.SemSize)
	}
	mem, err := unix.Mmap(fd, 0, hf3fs.SemSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: target, Err: err}
	}
	s := &submitSem{mem: mem, sem: hf3fs.SemAt(mem)}
	b.sems[prio] = s
	return s.sem, nil
}

// ringKey returns a ring's key. Batching is applied by the Ring before
// requests reach the shared queue, so the daemon is told io_depth +Depth
// for Exact (it then takes exactly Depth per job, which is what the Ring
// queues) and 0 (take what is queued) for ASAP and AtMost, always with .t0.
// Negative depths are not emitted: newer daemons reject them
// (IovTable.cc parseKey reads the depth as a non-negative int), and on
// older ones the AtMost timeout may never flush a partial batch
// at all; the Ring keeps the AtMost timer itself.
func ringKey(o RingOpts) hf3fs.Key {
	k := hf3fs.Key{ID: newID(), Ring: true, Read: o.Op == Read, Prio: hf3fs.PrioNormal, Flags: uint64(o.Flags)}
	switch o.Batch.Mode {
	case Exact:
		k.Depth = o.Batch.Depth
	}
	switch {
	case o.Priority < 0:
		k.Prio = hf3fs.PrioHigh
	case o.Priority > 0:
		k.Prio = hf3fs.PrioLow
	}
	return k
}

// hf3fsEngine is one ring (hf3fs_iorcreate4): its shared queues, the
// daemon's submit semaphore for its priority, and which slots are in
// flight (a completion for any other slot is dropped, never delivered
// twice).
type hf3fsEngine struct {
	b      *hf3fsBackend
	name   string
	mem    []byte
	ring   *hf3fs.Ring
	subSem *hf3fs.Sem
	busy   []atomic.Bool
	bad    atomic.Int64
}

// NewEngine implements Backend: hf3fs_iorcreate4.
func (b *hf3fsBackend) NewEngine(o RingOpts) (Engine, error) {
	key := ringKey(o)
	sem, err := b.submitSem(key.Prio)
	if err != nil {
		return nil, err
	}
	// Exactly hf3fs_ior_size bytes: the daemon derives the entries from
	// the file size.
	size := hf3fs.RingSize(o.Entries)
	path := shmDir + "/hf3fs-ior-" + hf3fs.UUID(newID())
	mem, err := b.createShm(path, size)
	if err != nil {
		return nil, err
	}
	if err := b.link(path, key); err != nil {
		unix.Munmap(mem)
		unix.Unlink(path)
		return nil, err
	}
	// The daemon holds its own mapping now; the name is not needed.
	unix.Unlink(path)
	ring, err := hf3fs.MapRing(mem, o.Entries)
	if err != nil {
		b.unlink(key.String())
		unix.Munmap(mem)
		return nil, err
	}
	return &hf3fsEngine{b: b, name: key.String(), mem: mem, ring: ring, subSem: sem, busy: make([]atomic.Bool, o.Entries)}, nil
}

// submit writes each slot's IoArgs and an SQE, publishing sqeHead after
// each one, then posts the daemon's submit semaphore (hf3fs_submit_ios).
func (e *hf3fsEngine) Submit(batch []IO) error {
	if e.b.dead.Load() {
		return e.b.errDaemonGone()
	}
	rg := e.ring
	h := rg.SqeHead.Load()
	if h < 0 || h >= rg.N {
		// The ring is shared with the daemon: a corrupted index must not
		// make us index outside the SQ.
		return fmt.Errorf("fs: hf3fs ring %s: sqeHead %d outside [0, %d) in shared memory: %w", e.name, h, rg.N, syscall.EIO)
	}
	for i := range batch {
		if _, ok := batch[i].Handle.(*hf3fsFile); !ok {
			return fmt.Errorf("%w: file %s was not opened by the hf3fs backend", ErrUnregistered, batch[i].File.Name())
		}
	}
	need := int32(len(batch))
	if free := rg.N - 1 - rg.Queued(h, rg.SqeTail.Load()); free < need {
		// Slots freed by an out-of-order batch stay in the SQ until the
		// daemon finishes the batches before them.
		deadline := time.Now().Add(sqFullWait)
		for rg.N-1-rg.Queued(h, rg.SqeTail.Load()) < need {
			if time.Now().After(deadline) {
				return ErrRingFull
			}
			if !e.b.alive() {
				return e.b.errDaemonGone()
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	for i := range batch {
		io := &batch[i]
		hf := io.Handle.(*hf3fsFile)
		s := io.Slot
		rg.Args[s] = hf3fs.IoArgs{
			BufID:    io.Buf.buf.id,
			BufOff:   uint64(io.Buf.off),
			FileIID:  hf.ino,
			FileOff:  uint64(io.Off),
			IoLen:    uint64(io.Buf.n),
			Userdata: io.Tag,
		}
		e.busy[s].Store(true)
		rg.Sqes[h] = hf3fs.IoSqe{Index: s, Userdata: io.Tag}
		h = (h + 1) % rg.N
		rg.SqeHead.Store(h)
	}
	e.subSem.Post()
	return nil
}

// reap takes CQEs at cqeTail, then posts the submit semaphore so the
// daemon sees the freed CQ space (hf3fs_wait_for_ios).
func (e *hf3fsEngine) Reap(out []IOResult) int {
	k := e.reap(out)
	if k == 0 && len(out) > 0 {
		e.b.alive() // a poller that never blocks still notices a dead daemon
	}
	if e.b.dead.Load() {
		// The daemon is gone: what it completed was taken above; every
		// other I/O in flight fails once, with ENOTCONN (a late CQE for
		// it is then dropped by the busy check).
		for s := range e.busy {
			if k == len(out) {
				break
			}
			if e.busy[s].CompareAndSwap(true, false) {
				out[k] = IOResult{Slot: int32(s), Res: -int64(syscall.ENOTCONN)}
				k++
			}
		}
	}
	return k
}

// reap takes the CQEs the daemon posted.
func (e *hf3fsEngine) reap(out []IOResult) int {
	rg := e.ring
	t, h := rg.CqeTail.Load(), rg.CqeHead.Load()
	if t == h || len(out) == 0 {
		return 0
	}
	if t < 0 || t >= rg.N || h < 0 || h >= rg.N {
		// Indices outside the CQ (a corrupted or hostile daemon): take
		// nothing rather than index outside it or loop forever; the
		// I/O then never completes and Wait ends with its context.
		e.bad.Add(1)
		return 0
	}
	k := 0
	for t != h && k < len(out) {
		c := rg.Cqes[t]
		t = (t + 1) % rg.N
		if c.Index < 0 || int(c.Index) >= len(e.busy) || !e.busy[c.Index].CompareAndSwap(true, false) {
			e.bad.Add(1)
			continue
		}
		out[k] = IOResult{Slot: c.Index, Res: c.Result}
		k++
	}
	rg.CqeTail.Store(t)
	e.subSem.Post()
	return k
}

// Block implements the engine's wait (see fs.Backend's Engine.Block): it
// returns at once when the daemon is gone (Reap then fails what is in
// flight) or need completions are queued, and otherwise sleeps at most
// one probe interval (hf3fsJitter), or until until, before the ring polls
// again.
func (e *hf3fsEngine) Block(done <-chan struct{}, need int, until time.Time) {
	if !e.b.alive() {
		return // Reap fails what is in flight
	}
	rg := e.ring
	if h, t := rg.CqeHead.Load(), rg.CqeTail.Load(); h >= 0 && h < rg.N && t >= 0 && t < rg.N && int(rg.Queued(h, t)) >= need {
		return
	}
	d := hf3fsJitter
	if !until.IsZero() {
		if rem := time.Until(until); rem < d {
			d = rem
		}
	}
	if d > 0 {
		rg.Sem.Wait(d)
	}
}

// close unregisters the ring (unlinks its key) and unmaps it.
// ForgetFile implements Engine: files are addressed by inode id, nothing
// is registered per ring.
func (e *hf3fsEngine) ForgetFile(int) {}

// ForgetBuffer implements Engine: buffers are registered with the daemon,
// not per ring.
func (e *hf3fsEngine) ForgetBuffer(int) {}

// Close implements Engine.
func (e *hf3fsEngine) Close() error {
	return errors.Join(e.b.unlink(e.name), unix.Munmap(e.mem))
}

// virtThread owns the kept-open <mp>/3fs-virt/iovs directory and makes
// every symlink in it from one OS thread. The daemon records the caller's
// thread id at opendir and, when that directory is released, removes the
// iovs and rings registered with the same id; so both must come from one
// locked thread. The goroutine never unlocks: when it ends its thread
// exits with it.
type virtThread struct {
	mu     sync.Mutex
	closed bool
	reqs   chan virtReq
	done   chan struct{}
}

type virtReq struct {
	fn  func(dirfd int) error
	res chan error
}

func startVirt(mp string) (*virtThread, error) {
	v := &virtThread{reqs: make(chan virtReq), done: make(chan struct{})}
	ready := make(chan error, 1)
	go v.loop(mp, ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	return v, nil
}

// openIovs opens <mp>/3fs-virt/iovs one component at a time, refusing a
// symlink at 3fs-virt or iovs.
func openIovs(mp string) (int, error) {
	fd, err := unix.Open(mp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: mp, Err: err}
	}
	for _, name := range []string{"3fs-virt", "iovs"} {
		nfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return -1, fmt.Errorf("%w: open %s in %s: %v", ErrNotHF3FS, name, mp, err)
		}
		fd = nfd
	}
	return fd, nil
}

func (v *virtThread) loop(mp string, ready chan<- error) {
	runtime.LockOSThread()
	dirfd, err := openIovs(mp)
	ready <- err
	if err != nil {
		close(v.done)
		return
	}
	for q := range v.reqs {
		q.res <- q.fn(dirfd)
	}
	unix.Close(dirfd)
	close(v.done)
}

// do runs fn on the virt thread with the iovs directory descriptor.
func (v *virtThread) do(fn func(dirfd int) error) error {
	res := make(chan error, 1)
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return ErrClosed
	}
	v.reqs <- virtReq{fn: fn, res: res}
	v.mu.Unlock()
	return <-res
}

// stop closes the directory (the daemon's releasedir cleanup) and ends
// the thread.
func (v *virtThread) stop() error {
	v.mu.Lock()
	if !v.closed {
		v.closed = true
		close(v.reqs)
	}
	v.mu.Unlock()
	<-v.done
	return nil
}

// probeHF3FS reports whether this machine has a 3FS FUSE mount.
func probeHF3FS() error {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("%w: read mountinfo: %v", ErrNotHF3FS, err)
	}
	if !strings.Contains(string(mi), " - fuse.hf3fs ") {
		return fmt.Errorf("%w: needs a 3FS FUSE mount (no fuse.hf3fs in /proc/self/mountinfo)", ErrNotHF3FS)
	}
	return nil
}
