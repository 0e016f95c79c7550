/* exif.h - the EXIF orientation of a JPEG file, as OpenCV's imread finds it.
 *
 * OpenCV turns an image upright by its EXIF orientation unless told
 * IMREAD_IGNORE_ORIENTATION, and the official loader calls cv2.imread with
 * the default flags, so a frame with orientation 6 reaches the model rotated.
 * This module only reads the tag; rgb_image_orient applies it. */
#ifndef STEPSTONE_EXIF_H
#define STEPSTONE_EXIF_H

#include <stddef.h>
#include <stdint.h>

/* Scans the JPEG's marker segments up to the first SOS for an APP1 segment
 * that starts with "Exif\0\0" and reads tag 0x0112 (Orientation) of its
 * TIFF IFD0, in either byte order. Returns 1..8, or 1 when there is no such
 * segment or tag, or the EXIF data are malformed: like OpenCV, a broken EXIF
 * block is ignored, not an error. Every read is bounds-checked. When a file
 * has several Exif segments the first one is used. */
int exif_jpeg_orientation(const uint8_t *jpeg, size_t size);

#endif
