/*
 * draw.c: rectangles on 8-bit images (outlines for boxes, filled ones for label backgrounds),
 * clipped to the image.
 */
#include "aim/image.h"

static void order_pair(int *a, int *b) {
    if (*a > *b) {
        int t = *a;
        *a = *b;
        *b = t;
    }
}

void aim_image_fill_rect(aim_image *img, int x1, int y1, int x2, int y2, const uint8_t rgb[3]) {
    order_pair(&x1, &x2);
    order_pair(&y1, &y2);
    if (x1 < 0) x1 = 0;
    if (y1 < 0) y1 = 0;
    if (x2 >= img->width) x2 = img->width - 1;
    if (y2 >= img->height) y2 = img->height - 1;
    if (x1 > x2 || y1 > y2) return;
    int c = img->channels;
    for (int y = y1; y <= y2; y++) {
        uint8_t *p = img->data + ((size_t)y * (size_t)img->width + (size_t)x1) * (size_t)c;
        for (int x = x1; x <= x2; x++, p += c)
            for (int k = 0; k < c; k++)
                p[k] = rgb[k];
    }
}

void aim_image_draw_rect(aim_image *img, int x1, int y1, int x2, int y2, const uint8_t rgb[3],
                         int thickness) {
    order_pair(&x1, &x2);
    order_pair(&y1, &y2);
    if (thickness < 1) thickness = 1;
    int t = thickness - 1;
    aim_image_fill_rect(img, x1, y1, x2, y1 + t, rgb); /* top */
    aim_image_fill_rect(img, x1, y2 - t, x2, y2, rgb); /* bottom */
    aim_image_fill_rect(img, x1, y1, x1 + t, y2, rgb); /* left */
    aim_image_fill_rect(img, x2 - t, y1, x2, y2, rgb); /* right */
}
