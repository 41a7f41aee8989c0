//go:build linux

package hf3fs

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

var testID = [16]byte{0x3b, 0x1f, 0x8c, 0x2e, 0x5d, 0x7a, 0x4c, 0x1e, 0x9f, 0x2b, 0x0a, 0x6d, 0x4e, 0x8c, 0x1b, 0x7f}

func TestKeyGolden(t *testing.T) {
	const u = "3b1f8c2e-5d7a-4c1e-9f2b-0a6d4e8c1b7f"
	for _, tc := range []struct {
		name string
		key  Key
		want string
	}{
		{"data iov", Key{ID: testID}, u},
		{"data iov with block", Key{ID: testID, BlockSize: 1 << 20}, u + ".b1048576"},
		{"read ring depth 0", Key{ID: testID, Ring: true, Read: true, Prio: PrioNormal}, u + ".r0.t0"},
		{"write ring exact 16 low", Key{ID: testID, Ring: true, Depth: 16, Prio: PrioLow}, u + ".w16.pl.t0"},
		{"read ring at most 64 high 5ms forbid holes", Key{ID: testID, Ring: true, Read: true, Depth: -64, Prio: PrioHigh, TimeoutMs: 5, Flags: 2}, u + ".r-64.ph.t5.f10"},
		{"both flags binary", Key{ID: testID, Ring: true, Read: true, Prio: PrioNormal, Flags: 3}, u + ".r0.t0.f11"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.key.String(); got != tc.want {
				t.Fatalf("String() = %q, want %q", got, tc.want)
			}
			back, err := ParseKey(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if back != tc.key {
				t.Fatalf("ParseKey(%q) = %+v, want %+v", tc.want, back, tc.key)
			}
		})
	}
}

func TestParseKeyRejects(t *testing.T) {
	const u = "3b1f8c2e-5d7a-4c1e-9f2b-0a6d4e8c1b7f"
	for _, s := range []string{
		"", "x", u[:35], strings.ToUpper(u), u + "x", u + ".", u + "..b1", u + ".b0", u + ".b-4",
		u + ".r0", // a ring without .t/.f/.p
		u + ".r0.t0.r1", u + ".r0.t-1", u + ".r0.t0.f2", u + ".r0.px", u + ".t0", u + ".b4.f1",
		u + ".z1", "3b1f8c2e-5d7a-4c1e-9f2b-0a6d4e8c1b7g", "../../etc/passwd-xxxxxxxxxxxxxxxxxxxx",
		u + ".r40000.t0",
	} {
		if k, err := ParseKey(s); !errors.Is(err, ErrKey) {
			t.Errorf("ParseKey(%q) = %+v, %v; want ErrKey", s, k, err)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add("3b1f8c2e-5d7a-4c1e-9f2b-0a6d4e8c1b7f.r-64.ph.t5.f10")
	f.Add("3b1f8c2e-5d7a-4c1e-9f2b-0a6d4e8c1b7f.b1048576")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			return
		}
		// What parses prints to a key that parses to the same thing.
		k2, err := ParseKey(k.String())
		if err != nil || k2 != k {
			t.Fatalf("ParseKey(%q) = %+v; round trip %q -> %+v, %v", s, k, k.String(), k2, err)
		}
		if strings.ContainsAny(k.String(), "/\x00") {
			t.Fatalf("key %q has a path character", k.String())
		}
	})
}

func TestLayout(t *testing.T) {
	if s := unsafe.Sizeof(IoArgs{}); s != ArgsSize {
		t.Errorf("IoArgs is %d bytes, want %d", s, ArgsSize)
	}
	if s := unsafe.Sizeof(IoCqe{}); s != CqeSize {
		t.Errorf("IoCqe is %d bytes, want %d", s, CqeSize)
	}
	if s := unsafe.Sizeof(IoSqe{}); s != SqeSize {
		t.Errorf("IoSqe is %d bytes, want %d", s, SqeSize)
	}
	for _, o := range []struct {
		name      string
		got, want uintptr
	}{
		{"BufOff", unsafe.Offsetof(IoArgs{}.BufOff), 16},
		{"FileIID", unsafe.Offsetof(IoArgs{}.FileIID), 24},
		{"FileOff", unsafe.Offsetof(IoArgs{}.FileOff), 32},
		{"IoLen", unsafe.Offsetof(IoArgs{}.IoLen), 40},
		{"Userdata", unsafe.Offsetof(IoArgs{}.Userdata), 48},
		{"Cqe.Result", unsafe.Offsetof(IoCqe{}.Result), 8},
		{"Cqe.Userdata", unsafe.Offsetof(IoCqe{}.Userdata), 16},
		{"Sqe.Userdata", unsafe.Offsetof(IoSqe{}.Userdata), 8},
	} {
		if o.got != o.want {
			t.Errorf("offset of %s = %d, want %d", o.name, o.got, o.want)
		}
	}
	for _, e := range []int{1, 2, 64, 1024, 32768} {
		if got, want := RingSize(e), 16+32+96*(e+1)+4096; got != want {
			t.Errorf("RingSize(%d) = %d, want %d", e, got, want)
		}
		if got := RingEntries(RingSize(e)); got != e {
			t.Errorf("RingEntries(RingSize(%d)) = %d", e, got)
		}
	}
	mem := make([]byte, RingSize(4)+8)
	r, err := MapRing(mem, 4)
	if err != nil {
		t.Fatal(err)
	}
	base := uintptr(unsafe.Pointer(&mem[0]))
	for _, o := range []struct {
		name      string
		got, want uintptr
	}{
		{"sqeTail", uintptr(unsafe.Pointer(r.SqeTail)), 4},
		{"cqeHead", uintptr(unsafe.Pointer(r.CqeHead)), 8},
		{"cqeTail", uintptr(unsafe.Pointer(r.CqeTail)), 12},
		{"args", uintptr(unsafe.Pointer(&r.Args[0])), 16},
		{"cqes", uintptr(unsafe.Pointer(&r.Cqes[0])), 16 + 56*5},
		{"sqes", uintptr(unsafe.Pointer(&r.Sqes[0])), 16 + 80*5},
		{"sem", uintptr(unsafe.Pointer(r.Sem.data)), 16 + 96*5},
	} {
		if o.got-base != o.want {
			t.Errorf("%s at %d, want %d", o.name, o.got-base, o.want)
		}
	}
	if _, err := MapRing(mem[:RingSize(4)-1], 4); err == nil {
		t.Error("MapRing accepted a short mapping")
	}
	if q := r.Queued(1, 4); q != 2 {
		t.Errorf("Queued(1, 4) with N=5 = %d, want 2", q)
	}
}

func TestSemPostWait(t *testing.T) {
	mem := make([]byte, 32)
	s := SemAt(mem)
	s.Init(0)
	if s.Wait(time.Millisecond) {
		t.Fatal("Wait on 0 succeeded")
	}
	if d := *s.data; d != 0 {
		t.Fatalf("after a timed-out wait data = %#x, want 0 (waiter count restored)", d)
	}
	s.Post()
	s.Post()
	if s.Value() != 2 || !s.TryWait() || !s.Wait(0) || s.TryWait() {
		t.Fatal("two posts did not give exactly two waits")
	}
	// Blocked waiters are woken by posts: n goroutines each wait once.
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.Wait(10 * time.Second) {
				mu.Lock()
				got++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	for range n {
		s.Post()
	}
	wg.Wait()
	if got != n || s.Value() != 0 || *s.data>>32 != 0 {
		t.Fatalf("%d of %d waiters woke; value %d, waiters %d", got, n, s.Value(), *s.data>>32)
	}
}

func TestFindMount(t *testing.T) {
	const info = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
36 22 0:32 / /hf3fs/stage rw,nosuid,nodev,relatime shared:20 - fuse.hf3fs hf3fs.stage rw,user_id=0,group_id=0
37 36 0:33 / /hf3fs/stage/inner rw shared:21 - fuse.hf3fs hf3fs.inner rw
38 22 0:34 / /mnt/my\040disk rw shared:22 - fuse.hf3fs hf3fs.sp rw
39 22 0:35 / /hf3fs/stagefake rw shared:23 - tmpfs tmpfs rw
40 22 0:36 / /opt/x rw shared:24 opt:1 - fuse.hf3fs hf3fs.x rw
41 22 0:37 /sub /data/sub rw shared:25 - fuse.hf3fs hf3fs.sub rw
42 41 0:37 /3fs-virt /data/sub/3fs-virt rw shared:26 - fuse.hf3fs hf3fs.sub rw
`
	for _, tc := range []struct {
		path, mp string
		ok       bool
	}{
		{"/hf3fs/stage", "/hf3fs/stage", true},
		{"/hf3fs/stage/ckpt/0001", "/hf3fs/stage", true},
		{"/hf3fs/stage/inner/a", "/hf3fs/stage/inner", true},
		{"/hf3fs/stagefake/a", "", false},
		{"/mnt/my disk/data", "/mnt/my disk", true},
		{"/opt/x/y", "/opt/x", true},
		{"/home", "", false},
		{"/data/sub/shard-0", "/data/sub", true},
	} {
		mp, ok, err := FindMount(strings.NewReader(info), tc.path)
		if err != nil || ok != tc.ok || mp != tc.mp {
			t.Errorf("FindMount(%q) = %q, %v, %v; want %q, %v", tc.path, mp, ok, err, tc.mp, tc.ok)
		}
	}
}
