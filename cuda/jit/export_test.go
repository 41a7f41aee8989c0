package jit

// ValidEntry reports whether data is a whole, uncorrupted cache entry.
func ValidEntry(data []byte) bool {
	_, _, err := decodeEntry(data)
	return err == nil
}
