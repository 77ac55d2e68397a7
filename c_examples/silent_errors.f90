!> silent_errors: the mistakes a climate modeller makes with a closure library, from Fortran
!> (the twin of silent_errors.c; tests/c_abi.rs compiles it with -ffpe-trap=overflow and
!> -fcheck=all and requires an empty stderr, so that a hidden array temporary would fail it).
!>
!>   silent_errors DIR        (DIR: a scratch directory for model files)
!>
!> 1. an sb_rng_t that was never seeded -> SB_RNG_UNSEEDED; 2. 1-based z_coords, or the psi
!> block clamped -> SB_UNCOVERED_COORDINATE; 3. a failed sb_load keeps the loaded model; 4. a model
!> never loaded or freed -> SB_NO_MODEL; 5. missing / empty file, directory -> SB_FILE_NOT_FOUND,
!> SB_FILE_EMPTY, SB_NOT_A_FILE; 6. sweeps = -1 -> SB_COUNT_TOO_LARGE; 7. a value overwritten
!> after opening -> sb_verify gives SB_IMAGE_CHECKSUM; 8. z* = huge() under overflow traps ->
!> SB_OUT_OF_RANGE, and z* = 1e6 -> SB_OK with effective sample sizes near 1. Also: the module's
!> version constant, sb_normals, sb_training_value, default-kind coordinates and column slices
!> z(:, i) of a 2-D array passed without a copy. Stops with a non-zero code on a failed check.
program silent_errors
   use, intrinsic :: iso_c_binding
   use, intrinsic :: iso_fortran_env, only: error_unit
   use sbridge
   implicit none

   integer, parameter :: k = 4, d = 2 * k, m = 120, ncol = 3
   integer :: checks = 0, j, c, i, unit
   type(sbridge_model) :: model, never
   type(sbridge_layout) :: layout
   type(sb_fit_config_t) :: cfg
   type(sb_closure_config_t) :: ccfg, minus_one
   type(sb_workspace_lens_t) :: lens
   type(sb_rng_t) :: rng, rng_copy, zero, rngs(ncol)
   real(c_double) :: x(d, m), z_star(k), psi(k), psi_copy(k), normals(4), far(k), far_psi(k)
   real(c_double) :: huge_z(k), ess_in(k), ess_far(k), value
   real(c_double) :: zs(k, ncol), ps(k, ncol)
   real(c_double), allocatable :: work(:)
   integer :: z_coords(k), one_based(k), psi_block(k)
   integer(c_int64_t) :: saved
   character(len=1024) :: dir

   call get_command_argument(1, dir)
   if (len_trim(dir) == 0) then
      write (error_unit, '(a)') 'usage: silent_errors DIR'
      stop 2
   end if

   call expect_true(SBRIDGE_VERSION == sb_version_string(), 'module version = library version')

   ! A closure model: z = coordinates 0..3 (conditioning), psi = 4..7 (the heads' targets).
   do j = 1, m
      do c = 1, k
         x(c, j) = sin(0.37_c_double * (j - 1) + 1.3_c_double * (c - 1))
         x(k + c, j) = 0.5_c_double * x(c, j) + 0.2_c_double * cos(0.91_c_double * (j - 1) + (c - 1))
      end do
   end do
   call expect(sb_layout_new_closure(layout, k, 2, 1), SB_OK, 'closure layout')
   cfg%eps = 0.1_c_double
   call expect(sb_fit(model, x, layout, cfg), SB_OK, 'fit')
   call expect(sb_save(model, trim(dir)//'/model_f.img'), SB_OK, 'save')
   call expect(sb_load(model, trim(dir)//'/model_f.img'), SB_OK, 'load')
   call expect(sb_workspace(model, lens), SB_OK, 'workspace lengths')
   allocate (work(lens%closure))
   z_coords = [(c, c = 0, k - 1)]
   one_based = z_coords + 1
   psi_block = z_coords + k
   z_star = [0.1_c_double, -0.2_c_double, 0.3_c_double, 0.0_c_double]
   psi = 0
   ccfg%sweeps = 20
   call expect(sb_seed(rng, 7, 0), SB_OK, 'seed with default-kind integers')
   call expect(sb_closure(model, ccfg, z_coords, z_star, psi, rng, work), SB_OK, 'closure')
   call expect(sb_training_value(model, 3, k, value), SB_OK, 'training value')
   call expect_true(same([value], [x(k + 1, 4)]), 'training value of sample 3, coordinate 4')

   ! 1. An RNG that was never seeded, and one that was overwritten.
   psi_copy = psi
   call expect(sb_closure(model, ccfg, z_coords, z_star, psi, zero, work), SB_RNG_UNSEEDED, &
               'closure with an unseeded RNG')
   call expect_true(same(psi, psi_copy), 'psi unchanged')
   normals = 1.0_c_double
   call expect(sb_normals(zero, normals), SB_RNG_UNSEEDED, 'normals from an unseeded RNG')
   call expect_true(same(normals, [1.0_c_double, 1.0_c_double, 1.0_c_double, 1.0_c_double]), &
                    'normals unchanged')
   rng_copy = rng
   rng_copy%has_spare = 7
   call expect(sb_normals(rng_copy, normals), SB_RNG_CORRUPT, 'normals from a corrupt RNG')
   call expect(sb_normals(rng, normals(1:3)), SB_OK, 'three normals into a slice')
   call expect_true(same(normals(4:4), [1.0_c_double]), 'sb_normals writes only size(out) values')

   ! 2. Wrong conditioning coordinates.
   rng_copy = rng
   call expect(sb_closure(model, ccfg, one_based, z_star, psi, rng, work), &
               SB_UNCOVERED_COORDINATE, '1-based z_coords')
   call expect(sb_closure(model, ccfg, psi_block, z_star, psi, rng, work), &
               SB_UNCOVERED_COORDINATE, 'psi block clamped instead of z')
   call expect_true(same(psi, psi_copy) .and. all(rng%s == rng_copy%s), 'psi and rng unchanged')

   ! 3. and 5. A failed load keeps the model; what the loader says about bad files.
   open (newunit=unit, file=trim(dir)//'/not_a_model_f.img', access='stream', &
         form='unformatted', status='replace')
   write (unit) 'this is not a model image'
   close (unit)
   open (newunit=unit, file=trim(dir)//'/empty_f.img', access='stream', form='unformatted', &
         status='replace')
   close (unit)
   call expect(sb_load(model, trim(dir)//'/not_a_model_f.img'), SB_IMAGE_TRUNCATED, 'load junk')
   call expect(sb_load(model, trim(dir)//'/does_not_exist.img'), SB_FILE_NOT_FOUND, &
               'load a missing file')
   call expect(sb_load(model, trim(dir)//'/empty_f.img'), SB_FILE_EMPTY, 'load an empty file')
   call expect(sb_load(model, trim(dir)), SB_NOT_A_FILE, 'load a directory')
   call expect(sb_closure(model, ccfg, z_coords, z_star, psi, rng, work), SB_OK, &
               'closure after failed loads')

   ! 4. A model never loaded, or freed.
   call expect(sb_closure(never, ccfg, z_coords, z_star, psi, rng, work), SB_NO_MODEL, &
               'closure on a model never loaded')
   call expect(sb_load(never, trim(dir)//'/model_f.img'), SB_OK, 'load a second copy')
   call sb_free(never)
   call expect(sb_closure(never, ccfg, z_coords, z_star, psi, rng, work), SB_NO_MODEL, &
               'closure on a freed model')

   ! 6. A negative count.
   minus_one = ccfg
   minus_one%sweeps = -1
   call expect(sb_closure(model, minus_one, z_coords, z_star, psi, rng, work), &
               SB_COUNT_TOO_LARGE, 'sweeps = -1')

   ! 7. A value word overwritten after opening: calls do not re-read values, sb_verify does.
   call expect(sb_verify(model), SB_OK, 'verify')
   saved = model%words(size(model%words))
   model%words(size(model%words)) = ieor(saved, 16_c_int64_t)
   call expect(sb_verify(model), SB_IMAGE_CHECKSUM, 'verify after a flipped value')
   model%words(size(model%words)) = saved
   call expect(sb_verify(model), SB_OK, 'verify after restoring it')

   ! 8. Values that would overflow (this program runs with -ffpe-trap=overflow), and a column far
   ! outside the training data.
   huge_z = 0
   huge_z(1) = huge(1.0_c_double)
   call expect(sb_closure(model, ccfg, z_coords, huge_z, psi, rng, work), SB_OUT_OF_RANGE, &
               'z* = huge()')
   call expect(sb_closure_ess(model, z_coords, z_star, psi, ess_in, work), SB_OK, 'ess inside')
   far = 1.0e6_c_double
   far_psi = psi
   call expect(sb_closure(model, ccfg, z_coords, far, far_psi, rng, work), SB_OK, 'z* = 1e6')
   call expect(sb_closure_ess(model, z_coords, far, far_psi, ess_far, work), SB_OK, 'ess far')
   call expect_true(minval(ess_in) > 5 .and. maxval(ess_far) < 1.01_c_double, &
                    'effective sample size falls to 1 far from the data')

   ! Column slices of 2-D arrays, as a time-step loop passes them (no array temporaries).
   do i = 1, ncol
      call expect(sb_seed(rngs(i), 11, i), SB_OK, 'seed column')
      zs(:, i) = z_star * i
      ps(:, i) = 0
   end do
   call advance(zs, ps)

   call sb_free(model)
   call sb_free(layout)
   write (*, '(a, i0, a)') 'silent_errors (Fortran): ', checks, ' checks passed'

contains

   !> The columns of a caller's assumed-shape arrays, one closure call each.
   subroutine advance(z, p)
      real(c_double), intent(in) :: z(:, :)
      real(c_double), intent(inout) :: p(:, :)
      integer :: col
      do col = 1, size(z, 2)
         call expect(sb_closure(model, ccfg, z_coords, z(:, col), p(:, col), rngs(col), work), &
                     SB_OK, 'closure on a column slice')
      end do
   end subroutine

   !> Bit-for-bit equality of two arrays of doubles.
   logical function same(a, b)
      real(c_double), intent(in) :: a(:), b(:)
      same = size(a) == size(b)
      if (same) same = all(transfer(a, 0_c_int64_t, size(a)) == transfer(b, 0_c_int64_t, size(b)))
   end function

   subroutine expect(got, want, what)
      integer(c_int), intent(in) :: got, want
      character(len=*), intent(in) :: what
      checks = checks + 1
      if (got /= want) then
         write (error_unit, '(a, a, a, i0, a, a, a, i0)') 'FAILED: ', what, ': got ', got, &
            ' (', sb_message(got), '), expected ', want
         stop 1
      end if
   end subroutine

   subroutine expect_true(ok, what)
      logical, intent(in) :: ok
      character(len=*), intent(in) :: what
      checks = checks + 1
      if (.not. ok) then
         write (error_unit, '(a, a)') 'FAILED: ', what
         stop 1
      end if
   end subroutine

end program silent_errors
