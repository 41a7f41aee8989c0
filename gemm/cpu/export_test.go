package cpu

// SetTiles changes the tile limits for experiments; it returns the old ones.
func SetTiles(mc, nc, prepack int) (int, int, int) {
	a, b, c := mcMax, ncMax, prepackMax
	mcMax, ncMax, prepackMax = mc, nc, prepack
	return a, b, c
}
