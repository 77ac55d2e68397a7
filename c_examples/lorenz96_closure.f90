!> lorenz96_closure_f: the Lorenz-96 closure loop of lorenz96_closure.c, from Fortran through the
!> sbridge module (ffi/sbridge.f90).
!>
!>   lorenz96_closure_f IMAGE TRAIN STEPS LOG_OUT
!>
!> IMAGE is the model image file written by the C example (the fitted localized closure model,
!> K = d/2 slow variables), TRAIN its training file (uint64 M, uint64 2K, then M rows (z, psi));
!> only the first pair is read, as the initial state. The closure model (paper 000 eq. 62),
!> z <- z + (G(z) + psi) dt with dt = 5e-3 and G_k(z) = -z_{k-1}(z_{k-2} - z_{k+1}) - z_k + F,
!> runs STEPS steps; before every step psi = sb_closure(z* = z, n_c = 10 sweeps, warm start),
!> RNG stream (seed 2024, stream 0): the same model, seeds and initial state as the C example.
!> LOG_OUT receives the same log format as the C program (header, initial psi, then z and psi
!> of every step), which tests/c_abi.rs replays bit for bit with the Rust API.
!>
!> Reading the C program's image (instead of fitting again) keeps this example short and shows
!> the intended deployment: fit once, ship the image file, load it in the host model.
program lorenz96_closure_f
   use, intrinsic :: iso_c_binding
   use, intrinsic :: iso_fortran_env, only: error_unit
   use sbridge
   implicit none

   real(c_double), parameter :: forcing = 20.0_c_double, dt = 5.0e-3_c_double
   integer(c_int64_t), parameter :: seed = 2024, stream = 0
   integer(c_size_t), parameter :: sweeps = 10

   type(sbridge_model) :: model
   type(sb_model_info_t) :: info
   type(sb_workspace_lens_t) :: lens
   type(sb_closure_config_t) :: cfg
   type(sb_rng_t) :: rng
   character(len=4096) :: image_path, train_path, steps_arg, log_path
   integer(c_int64_t) :: train_header(2)
   real(c_double), allocatable :: z(:), psi(:), g(:), work(:), first_row(:)
   integer(c_size_t), allocatable :: z_coords(:)
   integer :: nk, k, steps, n, unit, ios
   real(c_double) :: zsum, zsq, mean, std

   if (command_argument_count() /= 4) then
      write (error_unit, '(a)') 'usage: lorenz96_closure_f IMAGE TRAIN STEPS LOG_OUT'
      error stop 2
   end if
   call get_command_argument(1, image_path)
   call get_command_argument(2, train_path)
   call get_command_argument(3, steps_arg)
   call get_command_argument(4, log_path)
   read (steps_arg, *, iostat=ios) steps
   if (ios /= 0 .or. steps < 1) then
      write (error_unit, '(a)') 'lorenz96_closure_f: STEPS must be a positive integer'
      error stop 2
   end if

   ! The model: load the image file (sb_load checks the 16-byte alignment and validates it).
   call sb_check(sb_load(model, trim(image_path)), 'loading '//trim(image_path))
   call sb_check(sb_info(model, info), 'model info')
   call sb_check(sb_workspace(model, lens), 'workspace lengths')
   if (info%float_size /= 8 .or. modulo(info%d, 2_c_size_t) /= 0) then
      write (error_unit, '(a)') 'lorenz96_closure_f: expected a double model of d = 2K'
      error stop 1
   end if
   nk = int(info%d / 2)
   write (*, '(a, a, a, i0, a, i0, a, i0, a)') 'sbridge ', sb_version_string(), ': model d = ', &
      info%d, ', M = ', info%m, ', ', info%n_heads, ' heads'

   ! The initial state: the first training pair.
   allocate (first_row(2 * nk))
   open (newunit=unit, file=trim(train_path), access='stream', form='unformatted', &
         status='old', action='read', iostat=ios)
   if (ios /= 0) then
      write (error_unit, '(a, a)') 'lorenz96_closure_f: cannot open ', trim(train_path)
      error stop 1
   end if
   read (unit, iostat=ios) train_header, first_row
   close (unit)
   if (ios /= 0 .or. train_header(2) /= 2 * nk) then
      write (error_unit, '(a)') 'lorenz96_closure_f: bad training file'
      error stop 1
   end if

   allocate (z(nk), psi(nk), g(nk), z_coords(nk), work(lens%closure))
   z = first_row(1:nk)
   psi = first_row(nk + 1:2 * nk)
   z_coords = [(int(k - 1, c_size_t), k=1, nk)]   ! 0-based: the z block is coordinates 0..K-1
   cfg = sb_closure_config_t(sweeps=sweeps, init=SB_INIT_WARM, scheme=SB_SCHEME_ISOTROPIC, &
                             noise=SB_NOISE_GLOBAL)
   call sb_check(sb_rng_seed(seed, stream, rng), 'seeding')

   open (newunit=unit, file=trim(log_path), access='stream', form='unformatted', &
         status='replace', action='write', iostat=ios)
   if (ios /= 0) then
      write (error_unit, '(a, a)') 'lorenz96_closure_f: cannot write ', trim(log_path)
      error stop 1
   end if
   write (unit) int([nk, steps], c_int64_t), seed, stream, int(sweeps, c_int64_t), &
      int(SB_INIT_WARM, c_int64_t), dt, psi

   ! The host model's time-step loop: one closure call per step.
   zsum = 0
   zsq = 0
   do n = 1, steps
      call sb_check(sb_closure(model, cfg, z_coords, z, psi, rng, work), 'closure call')
      write (unit) z, psi
      call resolved_tendency(z, g)
      do k = 1, nk
         z(k) = z(k) + (g(k) + psi(k)) * dt
      end do
      if (any(.not. (abs(z) <= 1.0e3_c_double))) then
         write (error_unit, '(a, i0)') 'lorenz96_closure_f: closure model blew up at step ', n
         error stop 1
      end if
      zsum = zsum + sum(z)
      zsq = zsq + sum(z * z)
   end do
   close (unit)

   mean = zsum / real(steps * nk, c_double)
   std = sqrt(zsq / real(steps * nk, c_double) - mean * mean)
   write (*, '(a, i0, a, es9.3, a, i0, a, f0.3, a, f0.3)') 'closure run: ', steps, &
      ' steps of dt = ', dt, ', n_c = ', sweeps, ': z mean ', mean, ' std ', std
   deallocate (z, psi, g, z_coords, work, first_row)
   call sb_free(model)

contains

   !> G_k(z) = -z_{k-1}(z_{k-2} - z_{k+1}) - z_k + F, periodic (paper 000 eq. 60).
   subroutine resolved_tendency(z, g)
      real(c_double), intent(in) :: z(:)
      real(c_double), intent(out) :: g(:)
      integer :: k, km1, km2, kp1, nk
      nk = size(z)
      do k = 1, nk
         km1 = modulo(k - 2, nk) + 1
         km2 = modulo(k - 3, nk) + 1
         kp1 = modulo(k, nk) + 1
         g(k) = -z(km1) * (z(km2) - z(kp1)) - z(k) + forcing
      end do
   end subroutine

end program lorenz96_closure_f
