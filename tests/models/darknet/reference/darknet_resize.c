/* Darknet's resize_image / letterbox_image on an image read from stdin (see README.md).
 * usage: rz SRC_H SRC_W OUT_H OUT_W [l]  (stdin: SRC_H*SRC_W*3 bytes, HWC; stdout: 3*OUT_H*OUT_W
 * float32, CHW; "l": letterbox_image instead of resize_image) */
#include <stdio.h>
#include <stdlib.h>
#include "darknet.h"

int main(int argc, char **argv) {
    int H = atoi(argv[1]), W = atoi(argv[2]), h = atoi(argv[3]), w = atoi(argv[4]);
    unsigned char *buf = malloc(H * W * 3);
    if (fread(buf, 1, H * W * 3, stdin) != (size_t)(H * W * 3)) return 1;
    image im = make_image(W, H, 3);
    for (int k = 0; k < 3; ++k)
        for (int y = 0; y < H; ++y)
            for (int x = 0; x < W; ++x)  /* as load_image_stb */
                im.data[k * W * H + y * W + x] = (float)buf[(y * W + x) * 3 + k] / 255.;
    image r = argc > 5 ? letterbox_image(im, w, h) : resize_image(im, w, h);
    fwrite(r.data, sizeof(float), 3 * w * h, stdout);
    return 0;
}
