//go:build linux

package fs

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/fireflyer-go/fireflyer/internal/hf3fs"
)

// FakeDaemon stands in for the 3FS FUSE daemon (hf3fs_fuse_main) in tests,
// written from the behaviour of deepseek-ai/3FS src/fuse/FuseClients.cc,
// IoRing.cc and IovTable.cc: it watches <mount>/3fs-virt/iovs with
// inotify, maps every buffer and ring registered there, waits on its
// per-priority submit semaphores, takes jobs from the rings by their
// io_depth, serves them from a MemStore keyed by inode id (the file's
// length is kept in the mount directory, the metadata of the fake), and
// posts completions, advances sqeTail in order and posts each ring's
// semaphore. The mount is a temporary directory: metadata calls (open,
// stat, fsync) go to it as they would go through FUSE.
type FakeDaemon struct {
	mount, iovs string
	dev         uint64
	store       *MemStore
	inotify     int
	sems        [3]fakeSem
	stop        chan struct{}
	stopping    atomic.Bool
	dead        atomic.Bool   // Kill: nothing more is served or completed
	killed      chan struct{} // closed by Kill
	killOnce    sync.Once
	workers     sync.WaitGroup
	jobs        sync.WaitGroup

	mu      sync.Mutex
	bufs    map[[16]byte]*fakeIov
	rings   map[string]*fakeRing
	acks    map[string]chan error
	inodes  map[uint64]*fakeInode
	targets []string // every shm file registered, for leak checks
	modes   map[string]os.FileMode
	closed  bool

	// faults, when set, decides a fault for each request the daemon
	// serves (daemon-side errors, short reads and latency).
	faults atomic.Pointer[func(DaemonIO) DaemonFault]

	// tamper, when set, rewrites each batch's completions and the new
	// cqeHead before they are published (a hostile or corrupted daemon).
	tamper atomic.Pointer[func(c []hf3fs.IoCqe, head int32) int32]
}

type fakeSem struct {
	path, link string
	mem        []byte
	sem        *hf3fs.Sem
}

type fakeIov struct {
	key hf3fs.Key
	mem []byte
}

type fakeRing struct {
	key  hf3fs.Key
	mem  []byte
	rg   *hf3fs.Ring
	ents int

	mu       sync.Mutex
	next     int32 // next SQE to take
	reserved int32 // CQ entries held for jobs in flight
	pending  []*fakeJob
	running  int
	removed  bool
}

type fakeJob struct {
	sqes []hf3fs.IoSqe
	args []hf3fs.IoArgs
	end  int32
	done bool
}

type fakeInode struct {
	mu   sync.Mutex
	path string
}

// DaemonIO describes one request the fake daemon serves, to its fault
// hook.
type DaemonIO struct {
	Op   Op     // the ring's direction
	Name string // the file's name in the store ("ino-<inode id>")
	Off  int64  // file offset in bytes
	Len  int    // request length in bytes
	Tag  uint64 // the request's userdata (Req.Tag)
}

// DaemonFault is what the fake daemon does to one request: fail it with
// Err (nothing transferred), cut a read to half its length (Short), or
// hold it back Delay first.
type DaemonFault struct {
	Err   syscall.Errno
	Short bool
	Delay time.Duration
}

// SetFaults makes the daemon ask hook about every request it serves from
// now on (nil: no faults). hook runs on the daemon's workers.
func (d *FakeDaemon) SetFaults(hook func(DaemonIO) DaemonFault) {
	if hook == nil {
		d.faults.Store(nil)
		return
	}
	d.faults.Store(&hook)
}

// maxJobsPerRing is the daemon's max_jobs_per_ioring.
const maxJobsPerRing = 32

// NewFakeDaemon starts a daemon on a new temporary mount; t.Cleanup stops
// it. store holds file data (nil: a fresh store without faults).
func NewFakeDaemon(t testing.TB, store *MemStore) *FakeDaemon {
	t.Helper()
	if store == nil {
		store = NewMemStore()
	}
	mount := t.TempDir()
	iovs := filepath.Join(mount, "3fs-virt", "iovs")
	if err := os.MkdirAll(iovs, 0o777); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(mount, &st); err != nil {
		t.Fatal(err)
	}
	d := &FakeDaemon{
		mount: mount, iovs: iovs, dev: st.Dev, store: store, stop: make(chan struct{}), killed: make(chan struct{}),
		bufs: map[[16]byte]*fakeIov{}, rings: map[string]*fakeRing{}, acks: map[string]chan error{},
		inodes: map[uint64]*fakeInode{}, modes: map[string]os.FileMode{},
	}
	for p := range d.sems {
		s := &d.sems[p]
		s.path = shmDir + "/sem.hf3fs-submit-ios." + hf3fs.UUID(newID())
		fd, err := unix.Open(s.path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		unix.Ftruncate(fd, hf3fs.SemSize)
		s.mem, err = unix.Mmap(fd, 0, hf3fs.SemSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		s.sem = hf3fs.SemAt(s.mem)
		s.sem.Init(0)
		s.link = filepath.Join(iovs, "submit-ios"+[3]string{".ph", "", ".pl"}[p])
		if err := os.Symlink(s.path, s.link); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.InotifyAddWatch(fd, iovs, unix.IN_CREATE|unix.IN_DELETE); err != nil {
		t.Fatal(err)
	}
	d.inotify = fd
	d.workers.Add(4)
	go d.watch()
	for p := range d.sems {
		go d.worker(p)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// Mount returns the fake mount point.
func (d *FakeDaemon) Mount() string { return d.mount }

// Opts returns the HF3FSOpts that point a Client at this daemon.
func (d *FakeDaemon) Opts() HF3FSOpts {
	return HF3FSOpts{MountPoint: d.mount, CheckFile: d.checkFile, Registered: d.await, Ioctl: d.ioctl}
}

// Kill makes the daemon die as a killed hf3fs_fuse_main would: it stops
// taking and completing I/O at once (jobs in flight never post their
// CQEs) and its files on the mount vanish (the submit-ios links; a real
// dead FUSE mount answers ENOTCONN instead). Close still cleans up.
func (d *FakeDaemon) Kill() {
	d.killOnce.Do(func() {
		d.dead.Store(true)
		close(d.killed)
		for _, s := range d.sems {
			os.Remove(s.link)
		}
	})
}

// fakeChunk is the fake's chunk size: HF3FS_IOC_PUNCH_HOLE ranges must be
// multiples of it, as 3FS requires of the file's chunk size.
const fakeChunk = 4096

// ioctl answers HF3FS_IOC_HARDLINK and HF3FS_IOC_PUNCH_HOLE (FuseOps.cc
// hf3fs_ioctl) from the argument struct's bytes.
func (d *FakeDaemon) ioctl(fd int, req uint, arg []byte) error {
	if d.dead.Load() {
		return syscall.ENOTCONN
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	switch req {
	case HF3FSIoctlHardlink:
		if len(arg) != hf3fsHardlinkArgLen {
			return syscall.EINVAL
		}
		parent := binary.NativeEndian.Uint64(arg)
		name := string(arg[8:])
		if i := strings.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if name == "" || strings.Contains(name, "/") {
			return syscall.EINVAL
		}
		dir := ""
		filepath.WalkDir(d.mount, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.IsDir() {
				return nil
			}
			var ds unix.Stat_t
			if unix.Stat(p, &ds) == nil && ds.Ino == parent {
				dir = p
				return filepath.SkipAll
			}
			return nil
		})
		if dir == "" {
			return syscall.ENOENT
		}
		src, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		if err != nil {
			return syscall.EBADF
		}
		if err := os.Link(src, filepath.Join(dir, name)); err != nil {
			var le *os.LinkError
			if errors.As(err, &le) {
				return le.Err
			}
			return err
		}
		return nil
	case HF3FSIoctlPunchHole:
		if len(arg) != hf3fsPunchArgLen {
			return syscall.EINVAL
		}
		n := int32(binary.NativeEndian.Uint32(arg))
		if n < 0 || n > hf3fsPunchHoleMax {
			return syscall.EINVAL
		}
		f, err := d.store.open("ino-"+strconv.FormatUint(st.Ino, 10), os.O_CREATE|os.O_RDWR)
		if err != nil {
			return syscall.EIO
		}
		for i := range int(n) {
			start := binary.NativeEndian.Uint64(arg[16+8*i:])
			end := binary.NativeEndian.Uint64(arg[16+8*hf3fsPunchHoleMax+8*i:])
			if start%fakeChunk != 0 || end%fakeChunk != 0 || end < start || end > 1<<62 {
				return syscall.EINVAL
			}
			if end > start {
				f.punch(d.store, int64(start), int64(end-start))
			}
		}
		return nil
	}
	return syscall.EINVAL
}

// checkFile stands in for the magic ioctl: the file must be on the
// mount's device.
func (d *FakeDaemon) checkFile(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Dev != d.dev {
		return ErrNotHF3FS
	}
	return nil
}

// Registered returns the names of the buffers and rings the daemon holds.
func (d *FakeDaemon) Registered() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, b := range d.bufs {
		out = append(out, b.key.String())
	}
	for n := range d.rings {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ShmFiles returns every shared-memory file registered so far and the
// mode it had then.
func (d *FakeDaemon) ShmFiles() map[string]os.FileMode {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]os.FileMode{}
	for k, v := range d.modes {
		out[k] = v
	}
	return out
}

// ackCh returns the channel that carries the daemon's answer for a key.
func (d *FakeDaemon) ackCh(name string) chan error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ch := d.acks[name]
	if ch == nil {
		ch = make(chan error, 1)
		d.acks[name] = ch
	}
	return ch
}

// await is the Registered hook: it returns what the daemon answered for
// the symlink, like the FUSE symlink call would.
func (d *FakeDaemon) await(link string) error {
	name := filepath.Base(link)
	ch := d.ackCh(name)
	defer func() {
		d.mu.Lock()
		delete(d.acks, name)
		d.mu.Unlock()
	}()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		return syscall.ETIMEDOUT
	case <-d.stop:
		return syscall.ENOTCONN
	}
}

func (d *FakeDaemon) watch() {
	defer d.workers.Done()
	buf := make([]byte, 64<<10)
	for {
		select {
		case <-d.stop:
			return
		default:
		}
		fds := []unix.PollFd{{Fd: int32(d.inotify), Events: unix.POLLIN}}
		unix.Poll(fds, 5)
		for {
			n, err := unix.Read(d.inotify, buf)
			if err != nil || n <= 0 {
				break
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
				off += unix.SizeofInotifyEvent + int(ev.Len)
				if strings.HasPrefix(name, "submit-ios") {
					continue
				}
				switch {
				case ev.Mask&unix.IN_CREATE != 0:
					err := d.add(name)
					d.ackCh(name) <- err
				case ev.Mask&unix.IN_DELETE != 0:
					d.remove(name)
				}
			}
		}
	}
}

// add is IovTable::addIov: parse the key, check the target is a regular
// file directly under /dev/shm, map it.
func (d *FakeDaemon) add(name string) error {
	key, err := hf3fs.ParseKey(name)
	if err != nil {
		return syscall.EINVAL
	}
	target, err := os.Readlink(filepath.Join(d.iovs, name))
	if err != nil || filepath.Dir(target) != shmDir {
		return syscall.EINVAL
	}
	fd, err := unix.Open(target, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return syscall.EINVAL
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size == 0 {
		return syscall.EINVAL
	}
	mem, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.targets = append(d.targets, target)
	d.modes[target] = os.FileMode(st.Mode & 0o777)
	if !key.Ring {
		d.bufs[key.ID] = &fakeIov{key: key, mem: mem}
		return nil
	}
	ents := hf3fs.RingEntries(int(st.Size))
	if ents < 1 || key.Depth > ents || -key.Depth > ents {
		unix.Munmap(mem)
		return syscall.EINVAL
	}
	rg, err := hf3fs.MapRing(mem, ents)
	if err != nil {
		unix.Munmap(mem)
		return syscall.EINVAL
	}
	rg.Sem.Init(0) // sem_init(sem, 1, 0)
	d.rings[name] = &fakeRing{key: key, mem: mem, rg: rg, ents: ents}
	return nil
}

func (d *FakeDaemon) remove(name string) {
	key, err := hf3fs.ParseKey(name)
	if err != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !key.Ring {
		if b := d.bufs[key.ID]; b != nil {
			delete(d.bufs, key.ID)
			unix.Munmap(b.mem)
		}
		return
	}
	r := d.rings[name]
	if r == nil {
		return
	}
	delete(d.rings, name)
	r.mu.Lock()
	r.removed = true
	idle := r.running == 0
	r.mu.Unlock()
	if idle {
		unix.Munmap(r.mem)
	}
}

// worker is one priority's watcher: after each post (or every 1 ms) it
// scans every ring of that priority.
func (d *FakeDaemon) worker(prio int) {
	defer d.workers.Done()
	for {
		select {
		case <-d.stop:
			return
		case <-d.killed:
			return
		default:
		}
		d.sems[prio].sem.Wait(time.Millisecond)
		d.mu.Lock()
		var rs []*fakeRing
		for _, r := range d.rings {
			if r.key.Prio == prio {
				rs = append(rs, r)
			}
		}
		d.mu.Unlock()
		for _, r := range rs {
			d.take(r)
		}
	}
}

// take is IoRing::jobsToProc: jobs of exactly depth (>0), everything
// queued (0) or up to -depth (<0), bounded by free CQ space.
func (d *FakeDaemon) take(r *fakeRing) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rg := r.rg
	for !r.removed && r.running < maxJobsPerRing && !d.stopping.Load() && !d.dead.Load() {
		queued := rg.Queued(rg.SqeHead.Load(), r.next)
		room := rg.N - 1 - rg.Queued(rg.CqeHead.Load(), rg.CqeTail.Load()) - r.reserved
		var n int32
		switch dp := int32(r.key.Depth); {
		case dp > 0:
			if queued < dp || room < dp {
				return
			}
			n = dp
		case dp == 0:
			n = min(queued, room)
		default:
			n = min(queued, -dp, room)
		}
		if n <= 0 {
			return
		}
		j := &fakeJob{}
		for range n {
			s := rg.Sqes[r.next]
			r.next = (r.next + 1) % rg.N
			j.sqes = append(j.sqes, s)
			var a hf3fs.IoArgs
			if s.Index >= 0 && int(s.Index) < r.ents {
				a = rg.Args[s.Index]
			}
			j.args = append(j.args, a)
		}
		j.end = r.next
		r.reserved += n
		r.pending = append(r.pending, j)
		r.running++
		d.jobs.Add(1)
		go d.run(r, j)
	}
}

func (d *FakeDaemon) run(r *fakeRing, j *fakeJob) {
	defer d.jobs.Done()
	res := make([]int64, len(j.args))
	for i, a := range j.args {
		if j.sqes[i].Index < 0 || int(j.sqes[i].Index) >= r.ents {
			res[i] = -int64(syscall.EINVAL)
			continue
		}
		res[i] = d.serve(r, a)
	}
	r.mu.Lock()
	if d.dead.Load() {
		// Killed: the job dies with the daemon, nothing is posted.
		r.running--
		unmap := r.removed && r.running == 0
		r.mu.Unlock()
		if unmap {
			unix.Munmap(r.mem)
		}
		return
	}
	rg := r.rg
	h := rg.CqeHead.Load()
	cq := make([]hf3fs.IoCqe, len(j.sqes))
	for i, s := range j.sqes {
		cq[i] = hf3fs.IoCqe{Index: s.Index, Result: res[i], Userdata: s.Userdata}
	}
	nh := (h + int32(len(cq))) % rg.N
	if tp := d.tamper.Load(); tp != nil {
		nh = (*tp)(cq, nh)
	}
	for _, c := range cq {
		rg.Cqes[h] = c
		h = (h + 1) % rg.N
	}
	rg.CqeHead.Store(nh)
	r.reserved -= int32(len(j.sqes))
	j.done = true
	for len(r.pending) > 0 && r.pending[0].done {
		rg.SqeTail.Store(r.pending[0].end)
		r.pending = r.pending[1:]
	}
	rg.Sem.Post()
	r.running--
	unmap := r.removed && r.running == 0
	r.mu.Unlock()
	if unmap {
		unix.Munmap(r.mem)
		return
	}
	d.take(r) // a worker that finishes pulls the ring's next job
}

// serve performs one request against the store: -errno or bytes.
func (d *FakeDaemon) serve(r *fakeRing, a hf3fs.IoArgs) int64 {
	d.mu.Lock()
	iov := d.bufs[a.BufID]
	d.mu.Unlock()
	if iov == nil {
		return -int64(syscall.EINVAL)
	}
	if a.IoLen == 0 || a.BufOff > uint64(len(iov.mem)) || a.IoLen > uint64(len(iov.mem))-a.BufOff || a.FileOff > 1<<62 {
		return -int64(syscall.EINVAL)
	}
	if bs := uint64(iov.key.BlockSize); bs > 0 && a.BufOff/bs != (a.BufOff+a.IoLen-1)/bs {
		return -int64(syscall.EINVAL)
	}
	ino := d.lookup(a.FileIID)
	if ino == nil {
		return -int64(syscall.EBADF)
	}
	b := iov.mem[a.BufOff : a.BufOff+a.IoLen]
	op := Write
	if r.key.Read {
		op = Read
	}
	name := "ino-" + strconv.FormatUint(a.FileIID, 10)
	var ft DaemonFault
	if h := d.faults.Load(); h != nil {
		ft = (*h)(DaemonIO{Op: op, Name: name, Off: int64(a.FileOff), Len: len(b), Tag: a.Userdata})
	}
	if ft.Delay > 0 {
		t := time.NewTimer(ft.Delay)
		select {
		case <-t.C:
		case <-d.killed:
		case <-d.stop:
		}
		t.Stop()
	}
	if ft.Err != 0 {
		return -int64(ft.Err)
	}
	ino.mu.Lock()
	defer ino.mu.Unlock()
	st, err := os.Stat(ino.path)
	if err != nil {
		return -int64(syscall.ENOENT)
	}
	f, err := d.store.open(name, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return -int64(syscall.EIO)
	}
	d.setSize(f, st.Size())
	if op == Write {
		n := f.writeAt(d.store, b, int64(a.FileOff))
		if n > 0 && int64(a.FileOff)+n > st.Size() {
			os.Truncate(ino.path, int64(a.FileOff)+n)
		}
		return n
	}
	n := f.readAt(b, int64(a.FileOff), r.key.Flags&uint64(ForbidReadHoles) != 0)
	if ft.Short && n > 0 {
		n /= 2
	}
	return n
}

// setSize makes the stored file as long as the metadata says (a
// truncation through the mount drops data; an extension adds a hole).
func (d *FakeDaemon) setSize(f *memFile, n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n < f.size {
		var dropped int64
		for p, pg := range f.pages {
			switch {
			case p*memPage >= n:
				delete(f.pages, p)
				dropped++
			case (p+1)*memPage > n:
				clear(pg[n-p*memPage:])
			}
		}
		d.store.mu.Lock()
		d.store.pages -= dropped
		d.store.mu.Unlock()
	}
	f.size = n
}

// lookup finds the file with inode id iid under the mount (the daemon
// only knows inodes the kernel has looked up; the fake walks the tree).
func (d *FakeDaemon) lookup(iid uint64) *fakeInode {
	d.mu.Lock()
	defer d.mu.Unlock()
	if in := d.inodes[iid]; in != nil {
		var st unix.Stat_t
		if unix.Stat(in.path, &st) == nil && st.Ino == iid {
			return in
		}
	}
	var found *fakeInode
	filepath.WalkDir(d.mount, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if e.IsDir() && e.Name() == "3fs-virt" && filepath.Dir(p) == d.mount {
			return filepath.SkipDir
		}
		if !e.Type().IsRegular() {
			return nil
		}
		var st unix.Stat_t
		if unix.Stat(p, &st) != nil {
			return nil
		}
		in := d.inodes[st.Ino]
		if in == nil {
			in = &fakeInode{}
			d.inodes[st.Ino] = in
		}
		in.path = p
		if st.Ino == iid {
			found = in
		}
		return nil
	})
	return found
}

// Close stops the daemon, unmaps everything and removes its semaphores.
func (d *FakeDaemon) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.stopping.Store(true)
	close(d.stop)
	d.workers.Wait()
	d.jobs.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for id, b := range d.bufs {
		errs = append(errs, unix.Munmap(b.mem))
		delete(d.bufs, id)
	}
	for n, r := range d.rings {
		errs = append(errs, unix.Munmap(r.mem))
		delete(d.rings, n)
	}
	for _, s := range d.sems {
		errs = append(errs, unix.Munmap(s.mem), os.Remove(s.path))
		if err := os.Remove(s.link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, unix.Close(d.inotify))
	return errors.Join(errs...)
}
