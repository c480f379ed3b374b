/* SPDX-License-Identifier: MIT */
/*
 * vdk-img output: human text and JSON in qemu-img 7.2's exact layout.
 *
 * JSON is printed the way qemu-img prints its QAPI objects: four-space
 * indentation, '"key": value', non-ASCII and control characters escaped as
 * \uXXXX, and object members in qemu's dictionary order (see
 * img_json_print), so that tools diffing the two programs' output see no
 * difference.  JSON objects are built with json-c; everything here only
 * reads them.
 */
#ifndef VDK_IMG_OUTPUT_H
#define VDK_IMG_OUTPUT_H

#include <json-c/json.h>
#include <stdio.h>

#include "vdk/block.h"

enum img_output { IMG_OUTPUT_HUMAN, IMG_OUTPUT_JSON };

/*
 * Parse the --output argument.  Returns 0, or prints qemu-img's message
 * ("--output must be used with human or json as argument.") and returns 1.
 */
int img_parse_output(const char *arg, enum img_output *out);

/* Pretty-print obj (object, array or scalar) followed by a newline. */
void img_json_print(FILE *out, struct json_object *obj);

/*
 * Human dump of a format-specific object {"type": t, "data": {...}} as
 * qemu-img's "Format specific information:" block: nested members indented
 * by four spaces per level, '-' in keys shown as ' ', list items as "[i]:".
 * Prints nothing for NULL or for an object without "data".
 */
void img_print_format_specific(FILE *out, struct json_object *fs);

/*
 * Build the qemu ImageInfo object for the format node n ("filename",
 * "format", "virtual-size", "actual-size", "dirty-flag", "cluster-size",
 * "encrypted", backing fields, "snapshots", "format-specific").
 * Returns NULL with *errp set on failure.
 */
struct json_object *img_info_build(struct vdk_node *n, struct vdk_error **errp);

/* qemu-img's human "info" layout for an object from img_info_build(). */
void img_info_print_human(FILE *out, struct json_object *info);

/* Snapshot table ("ID TAG VM SIZE DATE VM CLOCK ICOUNT") with its header. */
void img_snapshot_print_header(FILE *out);
void img_snapshot_print_row(FILE *out, const struct vdk_snapshot_info *sn);

/* One snapshot as qemu's SnapshotInfo JSON object. */
struct json_object *img_snapshot_to_json(const struct vdk_snapshot_info *sn);

#endif
