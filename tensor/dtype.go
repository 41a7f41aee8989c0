package tensor

import "fmt"

// DType names an element type. The zero value is Invalid.
type DType uint8

// The element types Fireflyer tensors can hold.
const (
	Invalid DType = iota
	F32           // IEEE binary32
	F64           // IEEE binary64
	BF16T         // bfloat16 (1-8-7), see BF16
	F16T          // IEEE binary16 (1-5-10), see F16
	E4M3T         // OCP FP8 E4M3 "fn" (no infinities), see E4M3
	E5M2T         // OCP FP8 E5M2 (with infinities), see E5M2
	UE8M0T        // unsigned power-of-two scale byte, see UE8M0
	I32           // int32
	I64           // int64
	U8            // uint8 / raw bytes
)

var dtypeInfo = [...]struct {
	name string
	size int
}{
	Invalid: {"invalid", 0},
	F32:     {"F32", 4},
	F64:     {"F64", 8},
	BF16T:   {"BF16", 2},
	F16T:    {"F16", 2},
	E4M3T:   {"F8_E4M3", 1},
	E5M2T:   {"F8_E5M2", 1},
	UE8M0T:  {"UE8M0", 1},
	I32:     {"I32", 4},
	I64:     {"I64", 8},
	U8:      {"U8", 1},
}

// Size returns the size of one element in bytes (0 for Invalid or unknown).
func (d DType) Size() int {
	if int(d) >= len(dtypeInfo) {
		return 0
	}
	return dtypeInfo[d].size
}

// String returns the safetensors-style name of the dtype ("F32", "BF16",
// "F8_E4M3", ...).
func (d DType) String() string {
	if int(d) >= len(dtypeInfo) || d == Invalid {
		return fmt.Sprintf("DType(%d)", uint8(d))
	}
	return dtypeInfo[d].name
}

// ParseDType returns the dtype with the given safetensors-style name (as
// printed by String). It returns ErrDType for unknown names.
func ParseDType(name string) (DType, error) {
	for i := 1; i < len(dtypeInfo); i++ {
		if dtypeInfo[i].name == name {
			return DType(i), nil
		}
	}
	return Invalid, fmt.Errorf("%w: unknown dtype %q", ErrDType, name)
}
