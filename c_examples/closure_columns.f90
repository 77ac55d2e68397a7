!> closure_columns: the toy host model shared by the OpenMP, MPI and restart examples
!> (closure_openmp.f90, closure_mpi.f90, closure_restart.f90; closure_restart.c is the same model
!> in C). Replace it with your own model; what the examples show is how the closure call sits in
!> its loops.
!>
!> Every column is a one-scale Lorenz-96 ring of nk = 8 slow variables z_k with the closure
!> tendency psi_k from the sbridge model (paper 000 eq. 62):
!>
!>     z <- z + (G(z) + psi) dt,   G_k(z) = -z_{k-1}(z_{k-2} - z_{k+1}) - z_k + F,
!>
!> with dt = 5e-3 and F = 20. Before every step psi = sb_closure(z* = z, n_c = 10 sweeps, warm
!> start from the previous psi) with the column's own random stream (seed 2024, stream = the
!> GLOBAL column index, 0-based), so a column's trajectory does not depend on which thread or
!> rank advances it. The model image is the one c_examples/lorenz96_closure.c fits (layout
!> sb_layout_closure(8, 2, 1): coordinates 0..7 are z, 8..15 psi).
!>
!> The initial state of global column g (0-based) is z_k = mod(37 (8 g + k) + 11, 101) / 5 - 5
!> and psi = 0: plain integer and correctly rounded arithmetic, so C and Fortran start from the
!> same bits.
!>
!> The state file (little-endian, no record markers) is both the examples' output and the
!> restart checkpoint:
!>
!>     int64  ncol, nk, step, seed, checksum   (checksum: the model image's, sb_model_t%checksum)
!>     double z(nk, ncol)      the host model's state, column after column
!>     double psi(nk, ncol)    the closure's warm start (the last psi of every column)
!>     SbRng  rng(ncol)        every column's random stream, 48 bytes each (sb_rng_t)
module closure_columns
   use, intrinsic :: iso_c_binding
   use, intrinsic :: iso_fortran_env, only: error_unit, iostat_end
   use sbridge
   implicit none
   private

   integer, parameter, public :: nk = 8
   real(c_double), parameter, public :: forcing = 20.0_c_double, dt = 5.0e-3_c_double
   integer(c_int64_t), parameter, public :: seed = 2024
   integer(c_size_t), parameter, public :: sweeps = 10

   public :: closure_config, z_coordinates, initial_state, euler_step, write_state, read_state

contains

   !> The closure call's configuration: n_c sweeps, warm start from the previous psi.
   function closure_config() result(cfg)
      type(sb_closure_config_t) :: cfg
      cfg = sb_closure_config_t(sweeps=sweeps, init=SB_INIT_WARM, scheme=SB_SCHEME_ISOTROPIC, &
                                noise=SB_NOISE_GLOBAL)
   end function

   !> The clamped coordinates: the z block, 0-based as in C.
   function z_coordinates() result(zc)
      integer(c_size_t) :: zc(nk)
      integer :: k
      zc = [(int(k - 1, c_size_t), k=1, nk)]
   end function

   !> Initial state of the columns whose global 0-based indices start at g0 (one per column of z).
   subroutine initial_state(g0, z, psi)
      integer, intent(in) :: g0
      real(c_double), intent(out) :: z(:, :), psi(:, :)
      integer :: c, k
      do c = 1, size(z, 2)
         do k = 1, nk
            z(k, c) = real(modulo(37 * (nk * (g0 + c - 1) + k - 1) + 11, 101), c_double) &
                      / 5.0_c_double - 5.0_c_double
         end do
      end do
      psi = 0
   end subroutine

   !> One Euler step of one column with the closure tendency psi. Its locals are automatic
   !> (gfortran -fopenmp puts them on the calling thread's stack), so threads may call it
   !> concurrently on different columns.
   subroutine euler_step(z, psi)
      real(c_double), intent(inout) :: z(nk)
      real(c_double), intent(in) :: psi(nk)
      real(c_double) :: g(nk)
      integer :: k, km1, km2, kp1
      do k = 1, nk
         km1 = modulo(k - 2, nk) + 1
         km2 = modulo(k - 3, nk) + 1
         kp1 = modulo(k, nk) + 1
         g(k) = -z(km1) * (z(km2) - z(kp1)) - z(k) + forcing
      end do
      z = z + (g + psi) * dt
   end subroutine

   !> Writes the state file (see the module header); .false. (and a message) if it cannot.
   function write_state(path, model, step, z, psi, rngs) result(ok)
      character(len=*), intent(in) :: path
      type(sbridge_model), intent(in) :: model
      integer, intent(in) :: step
      real(c_double), intent(in) :: z(:, :), psi(:, :)
      type(sb_rng_t), intent(in) :: rngs(:)
      logical :: ok
      integer :: unit, ios
      integer(c_int64_t) :: header(5)
      header(1) = size(z, 2)
      header(2) = nk
      header(3) = step
      header(4) = seed
      header(5) = model%handle%checksum
      open (newunit=unit, file=path, access='stream', form='unformatted', status='replace', &
            action='write', iostat=ios)
      if (ios == 0) then
         write (unit, iostat=ios) header, z, psi, rngs
         close (unit)
      end if
      ok = ios == 0
      if (.not. ok) write (error_unit, '(a, a)') 'cannot write ', path
   end function

   !> Reads a state file into z(nk, ncol), psi(nk, ncol), rngs(ncol) (allocated here) and the
   !> step it was written at; .false. (and a message) if it cannot, or if it was written with
   !> another model image than the one loaded in model (a restart must use the same image).
   function read_state(path, model, step, z, psi, rngs) result(ok)
      character(len=*), intent(in) :: path
      type(sbridge_model), intent(in) :: model
      integer, intent(out) :: step
      real(c_double), allocatable, intent(out) :: z(:, :), psi(:, :)
      type(sb_rng_t), allocatable, intent(out) :: rngs(:)
      logical :: ok
      integer :: unit, ios, extra
      integer(c_int64_t) :: header(5)
      integer(c_int8_t) :: byte
      ok = .false.
      step = 0
      open (newunit=unit, file=path, access='stream', form='unformatted', status='old', &
            action='read', iostat=ios)
      if (ios /= 0) then
         write (error_unit, '(a, a)') 'cannot open ', path
         return
      end if
      read (unit, iostat=ios) header
      if (ios /= 0 .or. header(1) < 1 .or. header(1) > 1000000 .or. header(2) /= nk .or. &
          header(3) < 0 .or. header(4) /= seed) then
         write (error_unit, '(a, a)') 'not a state file of this model: ', path
         close (unit)
         return
      end if
      if (header(5) /= model%handle%checksum) then
         write (error_unit, '(a, a)') 'written with another model image: ', path
         close (unit)
         return
      end if
      allocate (z(nk, header(1)), psi(nk, header(1)), rngs(header(1)))
      read (unit, iostat=ios) z, psi, rngs
      if (ios == 0) read (unit, iostat=extra) byte
      close (unit)
      if (ios /= 0 .or. extra /= iostat_end) then
         write (error_unit, '(a, a)') 'truncated or overlong state file: ', path
         return
      end if
      step = int(header(3))
      ok = .true.
   end function

end module closure_columns
