//! Keccak-f[1600] on two states at once with AVX-512VL: word `i` of both states shares one
//! 128-bit register, so every instruction advances both.
//!
//! The only `unsafe` in the keccak code is the call into the permutation, which is compiled for
//! AVX-512 and must not run on a CPU without it: an [`Avx512`] value exists only after the
//! features were detected at run time, which is what makes that call sound.
//!
//! One round, for both states (FIPS 202 §3.2; `A[x + 5y]` is the lane at column x, row y):
//! θ: `C[x]` = XOR of column x (two `vpternlogq` 0x96), `D[x] = C[x−1] ⊕ rol(C[x+1], 1)`, applied
//! with one three-input XOR per lane; ρ and π: each lane rotated by its offset into its new
//! position; χ: `A ⊕ (¬B ∧ C)` is one `vpternlogq` 0xD2 per lane; ι: XOR the round constant.

use std::arch::x86_64::{
    __m128i, _mm_extract_epi64, _mm_rol_epi64, _mm_set_epi64x, _mm_set1_epi64x, _mm_setzero_si128,
    _mm_ternarylogic_epi64, _mm_xor_si128,
};

use super::lanes::State2;

/// The 24 round constants of Keccak-f[1600] (FIPS 202 §3.2.5, ι).
const ROUND_CONSTANTS: [u64; 24] = [
    0x0000_0000_0000_0001,
    0x0000_0000_0000_8082,
    0x8000_0000_0000_808A,
    0x8000_0000_8000_8000,
    0x0000_0000_0000_808B,
    0x0000_0000_8000_0001,
    0x8000_0000_8000_8081,
    0x8000_0000_0000_8009,
    0x0000_0000_0000_008A,
    0x0000_0000_0000_0088,
    0x0000_0000_8000_8009,
    0x0000_0000_8000_000A,
    0x0000_0000_8000_808B,
    0x8000_0000_0000_008B,
    0x8000_0000_0000_8089,
    0x8000_0000_0000_8003,
    0x8000_0000_0000_8002,
    0x8000_0000_0000_0080,
    0x0000_0000_0000_800A,
    0x8000_0000_8000_000A,
    0x8000_0000_8000_8081,
    0x8000_0000_0000_8080,
    0x0000_0000_8000_0001,
    0x8000_0000_8000_8008,
];

/// Proof that the CPU has AVX-512F and AVX-512VL.
#[derive(Debug, Clone, Copy)]
pub(super) struct Avx512(());

impl Avx512 {
    /// `Some` when this CPU can run the permutation (std caches the detection).
    pub(super) fn detect() -> Option<Self> {
        (std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl"))
            .then_some(Self(()))
    }

    /// Applies Keccak-f[1600] to both states.
    pub(super) fn permute(self, state: &mut State2) {
        // SAFETY: `self` exists only if `detect` found AVX-512F and AVX-512VL on this CPU.
        unsafe { permute_both(state) }
    }
}

/// Three-input XOR.
#[target_feature(enable = "avx512f,avx512vl")]
#[inline]
fn xor3(a: __m128i, b: __m128i, c: __m128i) -> __m128i {
    _mm_ternarylogic_epi64::<0x96>(a, b, c)
}

/// χ for one lane: `a ⊕ (¬b ∧ c)`.
#[target_feature(enable = "avx512f,avx512vl")]
#[inline]
fn chi(a: __m128i, b: __m128i, c: __m128i) -> __m128i {
    _mm_ternarylogic_epi64::<0xD2>(a, b, c)
}

/// Left rotation of both words by `N`.
#[target_feature(enable = "avx512f,avx512vl")]
#[inline]
fn rol<const N: i32>(a: __m128i) -> __m128i {
    _mm_rol_epi64::<N>(a)
}

/// Keccak-f[1600] on both states. Safe to call only from code compiled with the same features,
/// or (as [`Avx512::permute`] does) after detecting them.
#[target_feature(enable = "avx512f,avx512vl")]
fn permute_both(state: &mut State2) {
    // Words are reinterpreted as i64 bit for bit (the intrinsics' signature).
    let mut a = [_mm_setzero_si128(); 25];
    for (lane, words) in a.iter_mut().zip(state.iter()) {
        *lane = _mm_set_epi64x(words[1] as i64, words[0] as i64);
    }
    for rc in ROUND_CONSTANTS {
        // θ: column parities, then D folded into each lane (a ⊕ C[x−1] ⊕ rol(C[x+1], 1)).
        let c0 = xor3(xor3(a[0], a[5], a[10]), a[15], a[20]);
        let c1 = xor3(xor3(a[1], a[6], a[11]), a[16], a[21]);
        let c2 = xor3(xor3(a[2], a[7], a[12]), a[17], a[22]);
        let c3 = xor3(xor3(a[3], a[8], a[13]), a[18], a[23]);
        let c4 = xor3(xor3(a[4], a[9], a[14]), a[19], a[24]);
        let (r0, r1, r2, r3, r4) = (
            rol::<1>(c0),
            rol::<1>(c1),
            rol::<1>(c2),
            rol::<1>(c3),
            rol::<1>(c4),
        );
        // θ then ρ (rotation offsets r[x][y], FIPS 202 Table 2) then π (lane (x, y) moves to
        // (y, 2x + 3y mod 5)): `bN` is the lane at its new index N.
        let b0 = xor3(a[0], c4, r1);
        let b10 = rol::<1>(xor3(a[1], c0, r2));
        let b20 = rol::<62>(xor3(a[2], c1, r3));
        let b5 = rol::<28>(xor3(a[3], c2, r4));
        let b15 = rol::<27>(xor3(a[4], c3, r0));
        let b16 = rol::<36>(xor3(a[5], c4, r1));
        let b1 = rol::<44>(xor3(a[6], c0, r2));
        let b11 = rol::<6>(xor3(a[7], c1, r3));
        let b21 = rol::<55>(xor3(a[8], c2, r4));
        let b6 = rol::<20>(xor3(a[9], c3, r0));
        let b7 = rol::<3>(xor3(a[10], c4, r1));
        let b17 = rol::<10>(xor3(a[11], c0, r2));
        let b2 = rol::<43>(xor3(a[12], c1, r3));
        let b12 = rol::<25>(xor3(a[13], c2, r4));
        let b22 = rol::<39>(xor3(a[14], c3, r0));
        let b23 = rol::<41>(xor3(a[15], c4, r1));
        let b8 = rol::<45>(xor3(a[16], c0, r2));
        let b18 = rol::<15>(xor3(a[17], c1, r3));
        let b3 = rol::<21>(xor3(a[18], c2, r4));
        let b13 = rol::<8>(xor3(a[19], c3, r0));
        let b14 = rol::<18>(xor3(a[20], c4, r1));
        let b24 = rol::<2>(xor3(a[21], c0, r2));
        let b9 = rol::<61>(xor3(a[22], c1, r3));
        let b19 = rol::<56>(xor3(a[23], c2, r4));
        let b4 = rol::<14>(xor3(a[24], c3, r0));
        // χ, row by row.
        a = [
            chi(b0, b1, b2),
            chi(b1, b2, b3),
            chi(b2, b3, b4),
            chi(b3, b4, b0),
            chi(b4, b0, b1),
            chi(b5, b6, b7),
            chi(b6, b7, b8),
            chi(b7, b8, b9),
            chi(b8, b9, b5),
            chi(b9, b5, b6),
            chi(b10, b11, b12),
            chi(b11, b12, b13),
            chi(b12, b13, b14),
            chi(b13, b14, b10),
            chi(b14, b10, b11),
            chi(b15, b16, b17),
            chi(b16, b17, b18),
            chi(b17, b18, b19),
            chi(b18, b19, b15),
            chi(b19, b15, b16),
            chi(b20, b21, b22),
            chi(b21, b22, b23),
            chi(b22, b23, b24),
            chi(b23, b24, b20),
            chi(b24, b20, b21),
        ];
        // ι. The constant is reinterpreted as i64 bit for bit.
        a[0] = _mm_xor_si128(a[0], _mm_set1_epi64x(rc as i64));
    }
    for (words, lane) in state.iter_mut().zip(a) {
        *words = [
            _mm_extract_epi64::<0>(lane) as u64,
            _mm_extract_epi64::<1>(lane) as u64,
        ];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_permutation_on_both_lanes() {
        let Some(avx512) = Avx512::detect() else {
            eprintln!("no AVX-512F/VL on this CPU: the two-lane permutation is not used here");
            return;
        };
        // Distinct, dense states in the two lanes, permuted several times in a row.
        let mut state: State2 = std::array::from_fn(|i| {
            [
                0x0123_4567_89ab_cdef_u64.rotate_left(i as u32) ^ i as u64,
                !(i as u64) << 7,
            ]
        });
        let mut expected = state;
        for _ in 0..3 {
            avx512.permute(&mut state);
            super::super::lanes::tests::reference_permute(&mut expected);
            assert_eq!(state, expected);
        }
    }
}
