package mem

import "testing"

func TestAlloc(t *testing.T) {
	for _, n := range []int{0, 1, 4096, MmapThreshold, MmapThreshold + 12345} {
		b := Alloc(n)
		if len(b.Bytes) != n {
			t.Fatalf("Alloc(%d): len %d", n, len(b.Bytes))
		}
		for i := 0; i < n; i += 4093 {
			if b.Bytes[i] != 0 {
				t.Fatalf("Alloc(%d): byte %d not zero", n, i)
			}
			b.Bytes[i] = 1
		}
		b.Free()
		b.Free() // idempotent
	}
}
