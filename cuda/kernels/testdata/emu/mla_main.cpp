// Runs mla_decode.cu's two kernels on the CPU emulator.
// usage: mla DIR B SQ HQ SPLITS MAX_PAGES CAUSAL SCALE
//   reads DIR/{q,kv,bt,seqlens}.bin, writes DIR/{out,lse}.bin
#include <string>

#include "emu.h"
#include "mla_decode.cu"

int main(int argc, char** argv) {
  if (argc != 9) return 2;
  const std::string dir = argv[1];
  const int b = atoi(argv[2]), sq = atoi(argv[3]), hq = atoi(argv[4]), splits = atoi(argv[5]);
  const int max_pages = atoi(argv[6]), causal = atoi(argv[7]);
  const float scale = (float)atof(argv[8]);
  auto q = emu_read<u16>(dir + "/q.bin");
  auto kv = emu_read<u16>(dir + "/kv.bin");
  auto bt = emu_read<int>(dir + "/bt.bin");
  auto seqlens = emu_read<int>(dir + "/seqlens.bin");
  const int rows = sq * hq;
  std::vector<float> o_part((size_t)b * splits * rows * 512, __int_as_float(-1));  // NaN-poisoned
  std::vector<float> lse_part((size_t)b * splits * rows, __int_as_float(-1));
  std::vector<u16> out((size_t)b * rows * 512, 0xFFFF);
  std::vector<float> lse((size_t)b * rows, __int_as_float(-1));
  emu_launch(emu_dim3{(unsigned)(rows + 7) / 8, (unsigned)splits, (unsigned)b}, emu_dim3{256, 1, 1}, [&] {
    mla_decode_partial<576, 512, 64>(o_part.data(), lse_part.data(), q.data(), kv.data(), bt.data(), seqlens.data(),
                                     sq, hq, splits, max_pages, scale, causal);
  });
  emu_launch(emu_dim3{(unsigned)rows, (unsigned)b, 1}, emu_dim3{128, 1, 1}, [&] {
    mla_decode_combine<512>(out.data(), lse.data(), o_part.data(), lse_part.data(), sq, hq, splits);
  });
  emu_write(dir + "/out.bin", out);
  emu_write(dir + "/lse.bin", lse);
  return 0;
}
