package platform

import (
	"os"
	"strconv"
	"strings"
	"sync"
)

// L2Bytes returns the size in bytes of the level-2 data (or unified) cache
// of CPU 0, as Linux reports it under /sys/devices/system/cpu/cpu0/cache,
// or 0 where that is unknown (other systems, a missing or odd file). The
// GEMM driver sizes its tiles by it; the value is probed once.
func L2Bytes() int {
	l2Once.Do(func() { l2Size = probeL2("/sys/devices/system/cpu/cpu0/cache") })
	return l2Size
}

var (
	l2Once sync.Once
	l2Size int
)

// probeL2 reads the index*/ entries of a Linux cache directory and returns
// the size of the level-2 data or unified cache, or 0.
func probeL2(dir string) int {
	for i := 0; i < 8; i++ {
		base := dir + "/index" + strconv.Itoa(i) + "/"
		level, err := os.ReadFile(base + "level")
		if err != nil {
			break
		}
		typ, _ := os.ReadFile(base + "type")
		if strings.TrimSpace(string(level)) != "2" || strings.TrimSpace(string(typ)) == "Instruction" {
			continue
		}
		size, err := os.ReadFile(base + "size")
		if err != nil {
			return 0
		}
		return parseCacheSize(strings.TrimSpace(string(size)))
	}
	return 0
}

// parseCacheSize parses Linux's cache size notation ("2048K", "1M", "512")
// into bytes; 0 if it is not that.
func parseCacheSize(s string) int {
	mul := 1
	switch {
	case strings.HasSuffix(s, "K"):
		mul, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mul, s = 1<<20, strings.TrimSuffix(s, "M")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0
	}
	return n * mul
}
