/* SPDX-License-Identifier: MIT */
/*
 * The two ways a guest ends a run on purpose:
 *  - ACPI PM1a (FADT): event block at 0x600 (status, enable) and control
 *    at 0x604.  Writing SLP_EN with SLP_TYP = the \_S5 value powers off.
 *    SCI_EN reads as set: the machine is always in ACPI mode (no SMI_CMD).
 *  - the i8042 command port 0x64: command 0xfe pulses the reset line (also
 *    the FADT reset register).
 */
#include <string.h>

#include "guest-boot/vm.h"

#define PM1_SCI_EN   (1u << 0)
#define PM1_SLP_EN   (1u << 13)
#define PM1_SLP_TYP(v) (((v) >> 10) & 7u)
#define I8042_DATA   0x60
#define I8042_CMD    0x64
#define I8042_RESET  0xfe

static uint32_t get(const uint8_t *d, unsigned size)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < size && i < 4; i++)
        v |= (uint32_t)d[i] << (8 * i);
    return v;
}

static void put(uint8_t *d, unsigned size, uint32_t v)
{
    for (unsigned i = 0; i < size; i++)
        d[i] = i < 4 ? (uint8_t)(v >> (8 * i)) : 0;
}

static void pm1_access(struct vm *vm, unsigned off, bool write, uint8_t *data,
                       unsigned size)
{
    pthread_mutex_lock(&vm->pm_lock);
    if (off < 4) {
        /* Event block: status (write 1 to clear), then enable. */
        uint32_t regs = vm->pm1_sts | (uint32_t)vm->pm1_en << 16;
        if (write) {
            uint32_t v = get(data, size) << (8 * off);
            uint32_t mask = (size >= 4 ? 0xffffffffu : ((1u << (8 * size)) - 1))
                            << (8 * off);
            vm->pm1_sts &= (uint16_t)~(v & mask & 0xffff);
            if (mask >> 16)
                vm->pm1_en = (uint16_t)(((regs & ~mask) | (v & mask)) >> 16);
        } else {
            put(data, size, regs >> (8 * off));
        }
    } else {
        unsigned o = off - 4;
        if (write) {
            uint32_t v = get(data, size) << (8 * o);
            uint16_t cnt = (uint16_t)((vm->pm1_cnt & ~(0xffffu >> (16 - 8 * size) << (8 * o))) | v);
            vm->pm1_cnt = (uint16_t)(cnt & ~PM1_SLP_EN);
            pthread_mutex_unlock(&vm->pm_lock);
            if ((cnt & PM1_SLP_EN) && PM1_SLP_TYP(cnt) == ACPI_S5_SLP_TYP)
                vm_set_verdict(vm, VERDICT_POWEROFF,
                               "guest powered off (ACPI S5)");
            return;
        }
        put(data, size, (uint32_t)(vm->pm1_cnt | PM1_SCI_EN) >> (8 * o));
    }
    pthread_mutex_unlock(&vm->pm_lock);
}

bool platform_pio(struct vm *vm, uint16_t port, bool write, uint8_t *data,
                  unsigned size)
{
    if (port >= PORT_PM1A_EVT && port + size <= PORT_PM1A_CNT + 2 && size <= 4) {
        pm1_access(vm, port - PORT_PM1A_EVT, write, data, size);
        return true;
    }
    if (port == I8042_CMD || port == I8042_DATA) {
        if (write && port == I8042_CMD && size == 1 && data[0] == I8042_RESET)
            vm_set_verdict(vm, VERDICT_RESET,
                           "guest requested a reset (i8042)");
        else if (!write)
            memset(data, 0, size); /* no data, input buffer empty */
        return true;
    }
    return false;
}
