!> sbridge: Schrödinger-bridge samplers for Fortran, through the C ABI of include/sbridge.h.
!>
!> Two layers:
!>
!> * Raw interfaces: every C function under its C name (sb_closure_f64, sb_fit_model_f64, ...)
!>   with bind(c) derived types mirroring the C structs (sb_model_t = SbModel, ...). Nullable C
!>   pointers are type(c_ptr), value arguments (pass c_null_ptr or c_loc(x)).
!> * Thin wrappers: generic names without the _f64/_f32 suffix (sb_fit, sb_closure,
!>   sb_closure_batch, sb_chain, sb_weights, sb_log_weights, sb_mean, sb_mean_cov, sb_score,
!>   sb_log_density, sb_rho) over real(c_double) and real(c_float) assumed-shape arrays, the
!>   derived types sbridge_model (owns the model image) and sbridge_layout (owns the head arrays),
!>   model file I/O (sb_load, sb_save), messages (sb_message) and the optional sb_check(status),
!>   which prints the message and stops. The library itself never prints or stops: every call
!>   returns an integer(c_int) status, SB_OK = 0.
!>
!> Conventions:
!> * Arrays are sample-major as in C: the training data X(d, M) has one sample per column.
!> * Coordinates (z_coords, clamp coordinates, layout arrays) are 0-based, as in C: the wrappers
!>   pass them through unchanged (no temporary copies inside a time-step loop).
!> * Outputs are written only on success. The wrappers declare them intent(inout) (not
!>   intent(out), which would make them undefined on entry) so that a failed call leaves them as
!>   they were. Work arrays are intent(inout) scratch.
!> * Array dummies are assumed-shape. The closure wrappers (sb_closure, sb_closure_batch,
!>   sb_closure_ess) pass a contiguous actual argument (a whole array, a column slice z(:, i)) to
!>   C without a copy, even from a caller's own assumed-shape dummy; a non-contiguous one is
!>   copied in and out. The other wrappers declare contiguous dummies (the compiler copies
!>   non-contiguous actuals).
!>
!> Model image alignment. The library requires the image to be 16-byte aligned
!> (SB_IMAGE_ALIGN). sbridge_model owns it as integer(c_int64_t), allocatable :: words(:).
!> gfortran allocates with malloc, which on x86-64 and aarch64 glibc (and musl, macOS) returns
!> 16-byte aligned blocks, so this is aligned in practice; the standard only promises 8. We keep
!> the allocatable (automatic deallocation, no C allocator in Fortran code, deep copy on
!> assignment) and verify instead: sb_fit and sb_load check the address and return
!> SB_IMAGE_MISALIGNED if it is not a multiple of 16 (as sb_model_open_* would), so a platform
!> where this fails is reported, never silently misread. Because assignment of an sbridge_model
!> copies the image to a new address, the C handle (whose image pointer refers to the words) is
!> re-pointed at the current words on every wrapper call (sb_handle). What each call checks: the
!> image's header, head table and stored checksum field against the handle (O(heads), no value is
!> re-read), so a replaced or re-fitted image is caught, but a value word overwritten in memory
!> is not; sb_verify(model) re-validates every byte (checksum and values) on request.
!>
!> Safety nets for a time-step loop. An sb_rng_t that was never seeded (all zeros, the default
!> value of the type) is SB_RNG_UNSEEDED; a closure call whose free coordinates include one that
!> no head targets (1-based z_coords, or the psi block clamped instead of z) is
!> SB_UNCOVERED_COORDINATE; a model that was never loaded, or was freed, is SB_NO_MODEL; counts
!> above SB_MAX_COUNT (a negative sweeps or steps) are SB_COUNT_TOO_LARGE; finite values beyond
!> 2^256 (double) / 2^32 (float) are SB_OUT_OF_RANGE before any arithmetic can overflow (so
!> -ffpe-trap=overflow is safe); sb_closure_ess gives each head's effective sample size, which
!> falls towards 1 when a column leaves the training data.
!>
!> Checkpoint and restart. The library keeps no state between calls, so a restart needs exactly
!> what the caller holds: every column's sb_rng_t (48 bytes of plain data: write it as it is),
!> every column's psi (the warm start of the next call), and the model image file (reload it
!> with sb_load). A run continued from these is bit-for-bit the uninterrupted run.
module sbridge
   use, intrinsic :: iso_c_binding
   use, intrinsic :: iso_fortran_env, only: error_unit
   implicit none
   private

   ! ---------------------------------------------------------------------------------------------
   ! Constants (include/sbridge.h)
   ! ---------------------------------------------------------------------------------------------
   integer(c_int), parameter, public :: SB_OK = 0, SB_EMPTY_DATA = 1, SB_ZERO_DIMENSION = 2, &
      SB_LENGTH_MISMATCH = 3, SB_BUFFER_TOO_SMALL = 4, SB_INVALID_EPSILON = 5, &
      SB_INVALID_BETA = 6, SB_INVALID_SCALE = 7, SB_NON_FINITE_DATA = 8, &
      SB_NON_FINITE_STATE = 9, SB_INVALID_TOLERANCE = 10, SB_ZERO_ITERATIONS = 11, &
      SB_NOT_CONVERGED = 12, SB_CAPACITY = 13, SB_INVALID_INDEX = 14, &
      SB_INVALID_STEP_SIZE = 15, SB_DEGENERATE_KDE = 16, SB_NON_FINITE_GRADIENT = 17, &
      SB_NON_FINITE_WEIGHTS = 18, SB_INVALID_LAYOUT = 19, SB_IMAGE_TRUNCATED = 20, &
      SB_IMAGE_BAD_MAGIC = 21, SB_IMAGE_UNSUPPORTED_VERSION = 22, &
      SB_IMAGE_WRONG_FLOAT_KIND = 23, SB_IMAGE_MISALIGNED = 24, SB_IMAGE_CHECKSUM = 25, &
      SB_IMAGE_CORRUPT = 26, SB_UNSUPPORTED = 27, SB_RNG_UNSEEDED = 28, SB_RNG_CORRUPT = 29, &
      SB_UNCOVERED_COORDINATE = 30, SB_OUT_OF_RANGE = 31, SB_NULL_POINTER = 100, &
      SB_MISALIGNED_POINTER = 101, SB_OVERLAPPING_BUFFERS = 102, SB_CALLBACK_FAILED = 103, &
      SB_INVALID_ARGUMENT = 104, SB_INTERNAL_ERROR = 105, SB_NO_MODEL = 106, &
      SB_COUNT_TOO_LARGE = 107, SB_FILE_NOT_FOUND = 108, SB_FILE_EMPTY = 109, &
      SB_NOT_A_FILE = 110, SB_FILE_UNREADABLE = 111, SB_OUT_OF_MEMORY = 112

   !> The largest count (steps, sweeps, columns, deviates) a call accepts (SB_MAX_COUNT).
   integer(c_size_t), parameter, public :: SB_MAX_COUNT = 2147483647_c_size_t
   !> The version of the library this module was written for (sb_version_string() is the one
   !> linked); SBRIDGE_VERSION_MAJOR/MINOR/PATCH as in sbridge.h.
   character(len=*), parameter, public :: SBRIDGE_VERSION = "0.1.0"
   integer, parameter, public :: SBRIDGE_VERSION_MAJOR = 0, SBRIDGE_VERSION_MINOR = 1, &
      SBRIDGE_VERSION_PATCH = 0

   integer(c_int), parameter, public :: SB_MAX_HEAD_DIM = 16, SB_IMAGE_ALIGN = 16
   integer(c_int32_t), parameter, public :: SB_SCHEME_ISOTROPIC = 0, SB_SCHEME_COVARIANCE = 1, &
      SB_SCHEME_SMALL_STEP_ISOTROPIC = 2, SB_SCHEME_SMALL_STEP_COVARIANCE = 3, &
      SB_SCHEME_BAYESIAN = 4, SB_SCHEME_BAYESIAN_OPTIMISER = 5
   integer(c_int32_t), parameter, public :: SB_NOISE_GLOBAL = 0, SB_NOISE_PER_HEAD = 1
   integer(c_int32_t), parameter, public :: SB_INIT_WARM = 0, SB_INIT_RANDOM_SAMPLE = 1

   ! ---------------------------------------------------------------------------------------------
   ! The C structs (uint32_t/uint64_t fields are the same-sized signed Fortran integers)
   ! ---------------------------------------------------------------------------------------------
   !> SbModel: an opened model (image pointer, length, float size, owner flag, checksum); the
   !> default value is the empty handle (SB_NO_MODEL).
   type, bind(c), public :: sb_model_t
      type(c_ptr) :: image = c_null_ptr
      integer(c_size_t) :: image_len = 0
      integer(c_int32_t) :: float_size = 0
      integer(c_int32_t) :: owned = 0
      integer(c_int64_t) :: checksum = 0
   end type

   !> SbLayoutSizes.
   type, bind(c), public :: sb_layout_sizes_t
      integer(c_size_t) :: n_heads = 0, nb_len = 0, tg_len = 0
   end type

   !> SbLayout: head layout in CSR form; the arrays belong to the caller.
   type, bind(c), public :: sb_layout_t
      integer(c_size_t) :: d = 0, n_heads = 0
      type(c_ptr) :: nb_offsets = c_null_ptr, nb_coords = c_null_ptr
      integer(c_size_t) :: nb_len = 0
      type(c_ptr) :: tg_offsets = c_null_ptr, tg_coords = c_null_ptr
      integer(c_size_t) :: tg_len = 0
   end type

   !> SbFitConfig: tol = 0 and max_iter = 0 select the defaults.
   type, bind(c), public :: sb_fit_config_t
      real(c_double) :: eps = 0.0_c_double
      real(c_double) :: beta = 0.0_c_double
      integer(c_int32_t) :: variable_bandwidth = 0
      real(c_double) :: tol = 0.0_c_double
      integer(c_int32_t) :: max_iter = 0
   end type

   !> SbFitReport.
   type, bind(c), public :: sb_fit_report_t
      integer(c_size_t) :: n_heads = 0
      integer(c_int32_t) :: max_iterations = 0
      real(c_double) :: max_residual = 0.0_c_double
      integer(c_size_t) :: image_len = 0
   end type

   !> SbModelInfo.
   type, bind(c), public :: sb_model_info_t
      integer(c_size_t) :: d = 0, m = 0, n_heads = 0, max_head_dim = 0
      real(c_double) :: eps = 0.0_c_double, beta = 0.0_c_double
      integer(c_int32_t) :: variable_bandwidth = 0, has_scales = 0, float_size = 0
   end type

   !> SbHeadInfo (coords/targets point into the image).
   type, bind(c), public :: sb_head_info_t
      integer(c_size_t) :: dim = 0, n_targets = 0
      type(c_ptr) :: coords = c_null_ptr, targets = c_null_ptr
      integer(c_int32_t) :: iterations = 0
      real(c_double) :: residual = 0.0_c_double
   end type

   !> SbWorkspaceLens: work-space lengths in elements of the model's float type.
   type, bind(c), public :: sb_workspace_lens_t
      integer(c_size_t) :: query = 0, chain = 0, closure = 0
   end type

   !> SbRng: plain-data xoshiro256++ state (copy it to checkpoint).
   type, bind(c), public :: sb_rng_t
      integer(c_int64_t) :: s(4) = 0
      integer(c_int64_t) :: spare = 0
      integer(c_int64_t) :: has_spare = 0
   end type

   !> SbStepConfig.
   type, bind(c), public :: sb_step_config_t
      integer(c_int32_t) :: scheme = SB_SCHEME_ISOTROPIC
      real(c_double) :: dtau = 0.0_c_double
      integer(c_int32_t) :: noise = SB_NOISE_GLOBAL
   end type

   !> SbClosureConfig.
   type, bind(c), public :: sb_closure_config_t
      integer(c_size_t) :: sweeps = 100
      integer(c_int32_t) :: init = SB_INIT_WARM
      integer(c_int32_t) :: scheme = SB_SCHEME_ISOTROPIC
      integer(c_int32_t) :: noise = SB_NOISE_GLOBAL
   end type

   ! ---------------------------------------------------------------------------------------------
   ! Owning types of the wrapper layer
   ! ---------------------------------------------------------------------------------------------
   !> A model image owned by Fortran (see the alignment note above) and its opened handle.
   type, public :: sbridge_model
      integer(c_int64_t), allocatable :: words(:)
      integer(c_size_t) :: nbytes = 0
      type(sb_model_t) :: handle
   end type

   !> A head layout whose four CSR arrays are owned by Fortran (0-based coordinates).
   type, public :: sbridge_layout
      integer(c_int32_t), allocatable :: nb_offsets(:), nb_coords(:), tg_offsets(:), tg_coords(:)
      type(sb_layout_t) :: handle
   end type

   !> The gradient callback of the Bayesian schemes, as C sees it: reads x(d), writes grad(d),
   !> returns 0 on success. Write it as a bind(c) function and pass c_funloc(it).
   abstract interface
      function sb_gradient_f64(x, d, grad, user) bind(c) result(status)
         import :: c_ptr, c_size_t, c_int32_t
         type(c_ptr), value :: x
         integer(c_size_t), value :: d
         type(c_ptr), value :: grad
         type(c_ptr), value :: user
         integer(c_int32_t) :: status
      end function
   end interface
   public :: sb_gradient_f64

   ! ---------------------------------------------------------------------------------------------
   ! Raw interfaces: the C functions under their C names
   ! ---------------------------------------------------------------------------------------------
   public :: sb_weights_f64, sb_log_weights_f64, sb_mean_f64, sb_mean_cov_f64, sb_score_f64, &
      sb_log_density_f64, sb_rho_f64, sb_weights_f32, sb_log_weights_f32, sb_mean_f32, &
      sb_mean_cov_f32, sb_score_f32, sb_log_density_f32, sb_rho_f32, &
      sb_layout_single_head_sizes, sb_layout_periodic_stencil_sizes, sb_layout_closure_sizes, &
      sb_layout_temporal_sizes, sb_layout_single_head, sb_layout_periodic_stencil, &
      sb_layout_closure, sb_layout_temporal, sb_image_len_f64, sb_image_len_f32, &
      sb_fit_workspace_len, sb_fit_model_f64, sb_fit_model_f32, sb_model_open_f64, &
      sb_model_open_f32, sb_model_info, sb_head_info, sb_workspace_lens, sb_rng_seed, &
      sb_rng_normals, sb_chain_f64, sb_chain_f32, sb_closure_f64, sb_closure_f32, &
      sb_closure_batch_f64, sb_closure_batch_f32, sb_status_message, sb_version, &
      sb_model_open, sb_model_verify, sb_model_load, sb_model_free, sb_training_value_f64, &
      sb_training_value_f32, sb_closure_ess_f64, sb_closure_ess_f32

   interface
      ! Bridge queries (x in the head's coordinate order).
      function sb_weights_f64(model, h, x, x_len, w, w_len, work, work_len) &
         bind(c, name="sb_weights_f64") result(status)
         import :: c_int, c_size_t, c_double, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), value :: h, x_len, w_len, work_len
         real(c_double), intent(in) :: x(*)
         real(c_double), intent(inout) :: w(*), work(*)
         integer(c_int) :: status
      end function
      function sb_log_weights_f64(model, h, x, x_len, out, out_len, work, work_len) &
         bind(c, name="sb_log_weights_f64") result(status)
         import :: c_int, c_size_t, c_double, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), value :: h, x_len, out_len, work_len
         real(c_double), intent(in) :: x(*)
         real(c_double), intent(inout) :: out(*), work(*)
         integer(c_int) :: status
      end function
      function sb_mean_f64(model, h, x, x_len, out, out_len, work, work_len) &
         bind(c, name="sb_mean_f64") result(status)
         import :: c_int, c_size_t, c_double, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), value :: h, x_len, out_len, work_len
         real(c_double), intent(in) :: x(*)
         real(c_double), intent(inout) :: out(*), work(*)
         integer(c_int) :: status
      end function
      function sb_mean_cov_f64(model, h, x, x_len, mean, mean_len, cov, cov_len, work, work_len) &
         bind(c, name="sb_mean_cov_f64") result(status)
         import :: c_int, c_size_t, c_double, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), value :: h, x_len, mean_len, cov_len, work_len
         real(c_double), intent(in) :: x(*)
         real(c_double), intent(inout) :: mean(*), cov(*), work(*)
         integer(c_int) :: status
      end function
      function sb_score_f64(model, h, x, x_len, out, out_len, work, work_len) &
         bind(c, name="sb_score_f64") result(status)
         import :: c_int, c_size_t, c_double, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), value :: h, x_len, out_len, work_len
         real(c_double), intent(in) :: x(*)
         real(c_double), intent(inout) :: out(*), work(*)
         integer(c_int) :: status
      end function
      function sb_log_density_f64(model, h, x, x_len, out, work, work_len) &
         bind(c, name="sb_log_density_f64") result(status)
         import :: c_int, c_size_t, c_double, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), value :: h, x_len, work_len
         real(c_double), intent(in) :: x(*)
         real(c_double), intent(inout) :: out, work(*)
         integer(c_int) :: status
      end function
      function sb_rho_f64(model, h, x, x_len, out, work, work_len) &
         bind(c, name="sb_rho_f64") result(status)
         import :: c_int, c_size_t, c_double, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), value :: h, x_len, work_len
         real(c_double), intent(in) :: x(*)
         real(c_double), intent(inout) :: out, work(*)
         integer(c_int) :: status
      end function
      function sb_weights_f32(model, h, x, x_len, w, w_len, work, work_len) &
         bind(c, name="sb_weights_f32") result(status)
         import :: c_int, c_size_t, c_float, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), value :: h, x_len, w_len, work_len
         real(c_float), intent(in) :: x(*)
         real(c_float), intent(inout) :: w(*), work(*)
         integer(c_int) :: status
      end function
      function sb_log_weights_f32(model, h, x, x_len, out, out_len, work, work_len) &
         bind(c, name="sb_log_weights_f32") result(status)
         import :: c_int, c_size_t, c_float, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), value :: h, x_len, out_len, work_len
         real(c_float), intent(in) :: x(*)
         real(c_float), intent(inout) :: out(*), work(*)
         integer(c_int) :: status
      end function
      function sb_mean_f32(model, h, x, x_len, out, out_len, work, work_len) &
         bind(c, name="sb_mean_f32") result(status)
         import :: c_int, c_size_t, c_float, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), value :: h, x_len, out_len, work_len
         real(c_float), intent(in) :: x(*)
         real(c_float), intent(inout) :: out(*), work(*)
         integer(c_int) :: status
      end function
      function sb_mean_cov_f32(model, h, x, x_len, mean, mean_len, cov, cov_len, work, work_len) &
         bind(c, name="sb_mean_cov_f32") result(status)
         import :: c_int, c_size_t, c_float, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), value :: h, x_len, mean_len, cov_len, work_len
         real(c_float), intent(in) :: x(*)
         real(c_float), intent(inout) :: mean(*), cov(*), work(*)
         integer(c_int) :: status
      end function
      function sb_score_f32(model, h, x, x_len, out, out_len, work, work_len) &
         bind(c, name="sb_score_f32") result(status)
         import :: c_int, c_size_t, c_float, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), value :: h, x_len, out_len, work_len
         real(c_float), intent(in) :: x(*)
         real(c_float), intent(inout) :: out(*), work(*)
         integer(c_int) :: status
      end function
      function sb_log_density_f32(model, h, x, x_len, out, work, work_len) &
         bind(c, name="sb_log_density_f32") result(status)
         import :: c_int, c_size_t, c_float, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), value :: h, x_len, work_len
         real(c_float), intent(in) :: x(*)
         real(c_float), intent(inout) :: out, work(*)
         integer(c_int) :: status
      end function
      function sb_rho_f32(model, h, x, x_len, out, work, work_len) &
         bind(c, name="sb_rho_f32") result(status)
         import :: c_int, c_size_t, c_float, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), value :: h, x_len, work_len
         real(c_float), intent(in) :: x(*)
         real(c_float), intent(inout) :: out, work(*)
         integer(c_int) :: status
      end function

      ! Layouts.
      function sb_layout_single_head_sizes(d, out) bind(c, name="sb_layout_single_head_sizes") &
         result(status)
         import :: c_int, c_size_t, sb_layout_sizes_t
         integer(c_size_t), value :: d
         type(sb_layout_sizes_t), intent(inout) :: out
         integer(c_int) :: status
      end function
      function sb_layout_periodic_stencil_sizes(n, r, out) &
         bind(c, name="sb_layout_periodic_stencil_sizes") result(status)
         import :: c_int, c_size_t, sb_layout_sizes_t
         integer(c_size_t), value :: n, r
         type(sb_layout_sizes_t), intent(inout) :: out
         integer(c_int) :: status
      end function
      function sb_layout_closure_sizes(k, blocks, r, out) bind(c, name="sb_layout_closure_sizes") &
         result(status)
         import :: c_int, c_size_t, sb_layout_sizes_t
         integer(c_size_t), value :: k, blocks, r
         type(sb_layout_sizes_t), intent(inout) :: out
         integer(c_int) :: status
      end function
      function sb_layout_temporal_sizes(s, k, out) bind(c, name="sb_layout_temporal_sizes") &
         result(status)
         import :: c_int, c_size_t, sb_layout_sizes_t
         integer(c_size_t), value :: s, k
         type(sb_layout_sizes_t), intent(inout) :: out
         integer(c_int) :: status
      end function
      function sb_layout_single_head(d, room, nb_offsets, nb_coords, tg_offsets, tg_coords, out) &
         bind(c, name="sb_layout_single_head") result(status)
         import :: c_int, c_size_t, c_int32_t, sb_layout_sizes_t, sb_layout_t
         integer(c_size_t), value :: d
         type(sb_layout_sizes_t), intent(in) :: room
         integer(c_int32_t), intent(inout) :: nb_offsets(*), nb_coords(*), tg_offsets(*), tg_coords(*)
         type(sb_layout_t), intent(inout) :: out
         integer(c_int) :: status
      end function
      function sb_layout_periodic_stencil(n, r, room, nb_offsets, nb_coords, tg_offsets, &
         tg_coords, out) bind(c, name="sb_layout_periodic_stencil") result(status)
         import :: c_int, c_size_t, c_int32_t, sb_layout_sizes_t, sb_layout_t
         integer(c_size_t), value :: n, r
         type(sb_layout_sizes_t), intent(in) :: room
         integer(c_int32_t), intent(inout) :: nb_offsets(*), nb_coords(*), tg_offsets(*), tg_coords(*)
         type(sb_layout_t), intent(inout) :: out
         integer(c_int) :: status
      end function
      function sb_layout_closure(k, blocks, r, room, nb_offsets, nb_coords, tg_offsets, &
         tg_coords, out) bind(c, name="sb_layout_closure") result(status)
         import :: c_int, c_size_t, c_int32_t, sb_layout_sizes_t, sb_layout_t
         integer(c_size_t), value :: k, blocks, r
         type(sb_layout_sizes_t), intent(in) :: room
         integer(c_int32_t), intent(inout) :: nb_offsets(*), nb_coords(*), tg_offsets(*), tg_coords(*)
         type(sb_layout_t), intent(inout) :: out
         integer(c_int) :: status
      end function
      function sb_layout_temporal(s, k, room, nb_offsets, nb_coords, tg_offsets, tg_coords, out) &
         bind(c, name="sb_layout_temporal") result(status)
         import :: c_int, c_size_t, c_int32_t, sb_layout_sizes_t, sb_layout_t
         integer(c_size_t), value :: s, k
         type(sb_layout_sizes_t), intent(in) :: room
         integer(c_int32_t), intent(inout) :: nb_offsets(*), nb_coords(*), tg_offsets(*), tg_coords(*)
         type(sb_layout_t), intent(inout) :: out
         integer(c_int) :: status
      end function

      ! Fitting and opening model images.
      function sb_image_len_f64(layout, m, variable, scales, out) bind(c, name="sb_image_len_f64") &
         result(status)
         import :: c_int, c_size_t, c_int32_t, sb_layout_t
         type(sb_layout_t), intent(in) :: layout
         integer(c_size_t), value :: m
         integer(c_int32_t), value :: variable, scales
         integer(c_size_t), intent(inout) :: out
         integer(c_int) :: status
      end function
      function sb_image_len_f32(layout, m, variable, scales, out) bind(c, name="sb_image_len_f32") &
         result(status)
         import :: c_int, c_size_t, c_int32_t, sb_layout_t
         type(sb_layout_t), intent(in) :: layout
         integer(c_size_t), value :: m
         integer(c_int32_t), value :: variable, scales
         integer(c_size_t), intent(inout) :: out
         integer(c_int) :: status
      end function
      function sb_fit_workspace_len(m) bind(c, name="sb_fit_workspace_len") result(n)
         import :: c_size_t
         integer(c_size_t), value :: m
         integer(c_size_t) :: n
      end function
      !> scales and report are nullable: pass c_null_ptr or c_loc(...).
      function sb_fit_model_f64(data, m, d, scales, layout, cfg, image, image_len, work, &
         work_len, report) bind(c, name="sb_fit_model_f64") result(status)
         import :: c_int, c_size_t, c_double, c_ptr, sb_layout_t, sb_fit_config_t
         real(c_double), intent(in) :: data(*)
         integer(c_size_t), value :: m, d, image_len, work_len
         type(c_ptr), value :: scales, image, report
         type(sb_layout_t), intent(in) :: layout
         type(sb_fit_config_t), intent(in) :: cfg
         real(c_double), intent(inout) :: work(*)
         integer(c_int) :: status
      end function
      function sb_fit_model_f32(data, m, d, scales, layout, cfg, image, image_len, work, &
         work_len, report) bind(c, name="sb_fit_model_f32") result(status)
         import :: c_int, c_size_t, c_float, c_ptr, sb_layout_t, sb_fit_config_t
         real(c_float), intent(in) :: data(*)
         integer(c_size_t), value :: m, d, image_len, work_len
         type(c_ptr), value :: scales, image, report
         type(sb_layout_t), intent(in) :: layout
         type(sb_fit_config_t), intent(in) :: cfg
         real(c_float), intent(inout) :: work(*)
         integer(c_int) :: status
      end function
      function sb_model_open_f64(image, image_len, model) bind(c, name="sb_model_open_f64") &
         result(status)
         import :: c_int, c_size_t, c_ptr, sb_model_t
         type(c_ptr), value :: image
         integer(c_size_t), value :: image_len
         type(sb_model_t), intent(inout) :: model
         integer(c_int) :: status
      end function
      function sb_model_open_f32(image, image_len, model) bind(c, name="sb_model_open_f32") &
         result(status)
         import :: c_int, c_size_t, c_ptr, sb_model_t
         type(c_ptr), value :: image
         integer(c_size_t), value :: image_len
         type(sb_model_t), intent(inout) :: model
         integer(c_int) :: status
      end function
      function sb_model_open(image, image_len, model) bind(c, name="sb_model_open") &
         result(status)
         import :: c_int, c_size_t, c_ptr, sb_model_t
         type(c_ptr), value :: image
         integer(c_size_t), value :: image_len
         type(sb_model_t), intent(inout) :: model
         integer(c_int) :: status
      end function
      function sb_model_verify(model) bind(c, name="sb_model_verify") result(status)
         import :: c_int, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_int) :: status
      end function
      !> path: a NUL-terminated string (trim(path)//c_null_char).
      function sb_model_load(path, model) bind(c, name="sb_model_load") result(status)
         import :: c_int, c_char, sb_model_t
         character(kind=c_char), intent(in) :: path(*)
         type(sb_model_t), intent(inout) :: model
         integer(c_int) :: status
      end function
      function sb_model_free(model) bind(c, name="sb_model_free") result(status)
         import :: c_int, sb_model_t
         type(sb_model_t), intent(inout) :: model
         integer(c_int) :: status
      end function
      function sb_model_info(model, out) bind(c, name="sb_model_info") result(status)
         import :: c_int, sb_model_t, sb_model_info_t
         type(sb_model_t), intent(in) :: model
         type(sb_model_info_t), intent(inout) :: out
         integer(c_int) :: status
      end function
      function sb_head_info(model, h, out) bind(c, name="sb_head_info") result(status)
         import :: c_int, c_size_t, sb_model_t, sb_head_info_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), value :: h
         type(sb_head_info_t), intent(inout) :: out
         integer(c_int) :: status
      end function
      function sb_workspace_lens(model, out) bind(c, name="sb_workspace_lens") result(status)
         import :: c_int, sb_model_t, sb_workspace_lens_t
         type(sb_model_t), intent(in) :: model
         type(sb_workspace_lens_t), intent(inout) :: out
         integer(c_int) :: status
      end function

      function sb_training_value_f64(model, j, c, out) bind(c, name="sb_training_value_f64") &
         result(status)
         import :: c_int, c_size_t, c_double, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), value :: j, c
         real(c_double), intent(inout) :: out
         integer(c_int) :: status
      end function
      function sb_training_value_f32(model, j, c, out) bind(c, name="sb_training_value_f32") &
         result(status)
         import :: c_int, c_size_t, c_float, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), value :: j, c
         real(c_float), intent(inout) :: out
         integer(c_int) :: status
      end function

      ! Random streams.
      function sb_rng_seed(seed, stream, rng) bind(c, name="sb_rng_seed") result(status)
         import :: c_int, c_int64_t, sb_rng_t
         integer(c_int64_t), value :: seed, stream
         type(sb_rng_t), intent(inout) :: rng
         integer(c_int) :: status
      end function
      function sb_rng_normals(rng, out, n) bind(c, name="sb_rng_normals") result(status)
         import :: c_int, c_size_t, c_double, sb_rng_t
         type(sb_rng_t), intent(inout) :: rng
         real(c_double), intent(inout) :: out(*)
         integer(c_size_t), value :: n
         integer(c_int) :: status
      end function

      ! Sampler chains (grad, user, clamp_*, record_* are nullable).
      function sb_chain_f64(model, cfg, grad, user, clamp_coords, clamp_values, n_clamp, x, &
         half, d, steps, record_half, record_proj, rng, work, work_len) &
         bind(c, name="sb_chain_f64") result(status)
         import :: c_int, c_size_t, c_double, c_ptr, c_funptr, sb_model_t, sb_step_config_t, &
            sb_rng_t
         type(sb_model_t), intent(in) :: model
         type(sb_step_config_t), intent(in) :: cfg
         type(c_funptr), value :: grad
         type(c_ptr), value :: user, clamp_coords, clamp_values, record_half, record_proj
         integer(c_size_t), value :: n_clamp, d, steps, work_len
         real(c_double), intent(inout) :: x(*), half(*), work(*)
         type(sb_rng_t), intent(inout) :: rng
         integer(c_int) :: status
      end function
      function sb_chain_f32(model, cfg, grad, user, clamp_coords, clamp_values, n_clamp, x, &
         half, d, steps, record_half, record_proj, rng, work, work_len) &
         bind(c, name="sb_chain_f32") result(status)
         import :: c_int, c_size_t, c_float, c_ptr, c_funptr, sb_model_t, sb_step_config_t, &
            sb_rng_t
         type(sb_model_t), intent(in) :: model
         type(sb_step_config_t), intent(in) :: cfg
         type(c_funptr), value :: grad
         type(c_ptr), value :: user, clamp_coords, clamp_values, record_half, record_proj
         integer(c_size_t), value :: n_clamp, d, steps, work_len
         real(c_float), intent(inout) :: x(*), half(*), work(*)
         type(sb_rng_t), intent(inout) :: rng
         integer(c_int) :: status
      end function

      ! The closure call (z_coords 0-based).
      function sb_closure_f64(model, cfg, z_coords, nz, z_star, psi, npsi, rng, work, work_len) &
         bind(c, name="sb_closure_f64") result(status)
         import :: c_int, c_size_t, c_double, sb_model_t, sb_closure_config_t, sb_rng_t
         type(sb_model_t), intent(in) :: model
         type(sb_closure_config_t), intent(in) :: cfg
         integer(c_size_t), intent(in) :: z_coords(*)
         integer(c_size_t), value :: nz, npsi, work_len
         real(c_double), intent(in) :: z_star(*)
         real(c_double), intent(inout) :: psi(*), work(*)
         type(sb_rng_t), intent(inout) :: rng
         integer(c_int) :: status
      end function
      function sb_closure_f32(model, cfg, z_coords, nz, z_star, psi, npsi, rng, work, work_len) &
         bind(c, name="sb_closure_f32") result(status)
         import :: c_int, c_size_t, c_float, sb_model_t, sb_closure_config_t, sb_rng_t
         type(sb_model_t), intent(in) :: model
         type(sb_closure_config_t), intent(in) :: cfg
         integer(c_size_t), intent(in) :: z_coords(*)
         integer(c_size_t), value :: nz, npsi, work_len
         real(c_float), intent(in) :: z_star(*)
         real(c_float), intent(inout) :: psi(*), work(*)
         type(sb_rng_t), intent(inout) :: rng
         integer(c_int) :: status
      end function
      !> failed_col is nullable (c_null_ptr or c_loc of an integer(c_size_t)).
      function sb_closure_batch_f64(model, cfg, z_coords, nz, ncol, z_star, psi, npsi, rngs, &
         work, work_len, failed_col) bind(c, name="sb_closure_batch_f64") result(status)
         import :: c_int, c_size_t, c_double, c_ptr, sb_model_t, sb_closure_config_t, sb_rng_t
         type(sb_model_t), intent(in) :: model
         type(sb_closure_config_t), intent(in) :: cfg
         integer(c_size_t), intent(in) :: z_coords(*)
         integer(c_size_t), value :: nz, ncol, npsi, work_len
         real(c_double), intent(in) :: z_star(*)
         real(c_double), intent(inout) :: psi(*), work(*)
         type(sb_rng_t), intent(inout) :: rngs(*)
         type(c_ptr), value :: failed_col
         integer(c_int) :: status
      end function
      function sb_closure_batch_f32(model, cfg, z_coords, nz, ncol, z_star, psi, npsi, rngs, &
         work, work_len, failed_col) bind(c, name="sb_closure_batch_f32") result(status)
         import :: c_int, c_size_t, c_float, c_ptr, sb_model_t, sb_closure_config_t, sb_rng_t
         type(sb_model_t), intent(in) :: model
         type(sb_closure_config_t), intent(in) :: cfg
         integer(c_size_t), intent(in) :: z_coords(*)
         integer(c_size_t), value :: nz, ncol, npsi, work_len
         real(c_float), intent(in) :: z_star(*)
         real(c_float), intent(inout) :: psi(*), work(*)
         type(sb_rng_t), intent(inout) :: rngs(*)
         type(c_ptr), value :: failed_col
         integer(c_int) :: status
      end function

      function sb_closure_ess_f64(model, z_coords, nz, z_star, psi, npsi, ess, n_ess, work, &
         work_len) bind(c, name="sb_closure_ess_f64") result(status)
         import :: c_int, c_size_t, c_double, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), intent(in) :: z_coords(*)
         integer(c_size_t), value :: nz, npsi, n_ess, work_len
         real(c_double), intent(in) :: z_star(*), psi(*)
         real(c_double), intent(inout) :: ess(*), work(*)
         integer(c_int) :: status
      end function
      function sb_closure_ess_f32(model, z_coords, nz, z_star, psi, npsi, ess, n_ess, work, &
         work_len) bind(c, name="sb_closure_ess_f32") result(status)
         import :: c_int, c_size_t, c_float, sb_model_t
         type(sb_model_t), intent(in) :: model
         integer(c_size_t), intent(in) :: z_coords(*)
         integer(c_size_t), value :: nz, npsi, n_ess, work_len
         real(c_float), intent(in) :: z_star(*), psi(*)
         real(c_float), intent(inout) :: ess(*), work(*)
         integer(c_int) :: status
      end function

      ! Messages.
      function sb_status_message(status) bind(c, name="sb_status_message") result(msg)
         import :: c_ptr, c_int32_t
         integer(c_int32_t), value :: status
         type(c_ptr) :: msg
      end function
      function sb_version() bind(c, name="sb_version") result(v)
         import :: c_ptr
         type(c_ptr) :: v
      end function
   end interface

   ! ---------------------------------------------------------------------------------------------
   ! Wrappers
   ! ---------------------------------------------------------------------------------------------
   public :: sb_fit, sb_closure, sb_closure_batch, sb_chain, sb_weights, sb_log_weights, sb_mean, &
      sb_mean_cov, sb_score, sb_log_density, sb_rho
   public :: sb_layout_new_single_head, sb_layout_new_periodic_stencil, sb_layout_new_closure, &
      sb_layout_new_temporal, sb_layout_handle
   public :: sb_load, sb_save, sb_open, sb_handle, sb_info, sb_head, sb_workspace, sb_float_size
   public :: sb_message, sb_version_string, sb_check, sb_free, sb_verify
   public :: sb_seed, sb_normals, sb_closure_ess, sb_training_value

   !> status = sb_seed(rng, seed, stream): sb_rng_seed for integers of the default kind or of
   !> kind c_int64_t (seed and stream of the same kind).
   interface sb_seed
      module procedure sbw_seed_default, sbw_seed_int64
   end interface
   !> status = sb_normals(rng, out(:)): size(out) standard normal deviates (never past the array).
   interface sb_normals
      module procedure sbw_normals
   end interface
   !> status = sb_closure_ess(model, z_coords(nz), z_star(nz), psi(npsi), ess(n_heads), work)
   interface sb_closure_ess
      module procedure sbw_closure_ess_f64, sbw_closure_ess_f32, sbw_closure_ess_f64_i, &
         sbw_closure_ess_f32_i
   end interface
   !> status = sb_training_value(model, j, c, out): coordinate c of training sample j (0-based,
   !> default-kind integers), out real(c_double) or real(c_float) as the model.
   interface sb_training_value
      module procedure sbw_training_value_f64, sbw_training_value_f32
   end interface

   !> call sb_free(model_or_layout): deallocates what it owns and clears its handle. Allocatable
   !> components are freed automatically when a local variable goes out of scope; main-program
   !> and module variables live to the end of the program, so free them when done.
   interface sb_free
      module procedure sbw_free_model, sbw_free_layout
   end interface

   !> status = sb_fit(model, x(d, M), layout, cfg [, scales(d)] [, report])
   interface sb_fit
      module procedure sbw_fit_f64, sbw_fit_f32
   end interface
   !> status = sb_closure(model, cfg, z_coords(nz), z_star(nz), psi(npsi), rng, work)
   !> z_coords: 0-based, integer(c_size_t) or default integer.
   interface sb_closure
      module procedure sbw_closure_f64, sbw_closure_f32, sbw_closure_f64_i, sbw_closure_f32_i
   end interface
   !> status = sb_closure_batch(model, cfg, z_coords(nz), z_star(nz, ncol), psi(npsi, ncol),
   !>                           rngs(ncol), work [, failed_col])
   interface sb_closure_batch
      module procedure sbw_closure_batch_f64, sbw_closure_batch_f32, sbw_closure_batch_f64_i, &
         sbw_closure_batch_f32_i
   end interface
   !> status = sb_chain(model, cfg, x(d), half(d), steps, rng, work [, grad, user]
   !>                   [, clamp_coords, clamp_values] [, record_half(d, steps), record_proj])
   interface sb_chain
      module procedure sbw_chain_f64, sbw_chain_f32
   end interface
   !> status = sb_weights(model, h, x(dim), w(M), work)   (h is 0-based)
   interface sb_weights
      module procedure sbw_weights_f64, sbw_weights_f32
   end interface
   !> status = sb_log_weights(model, h, x(dim), out(M), work)
   interface sb_log_weights
      module procedure sbw_log_weights_f64, sbw_log_weights_f32
   end interface
   !> status = sb_mean(model, h, x(dim), out(dim), work)
   interface sb_mean
      module procedure sbw_mean_f64, sbw_mean_f32
   end interface
   !> status = sb_mean_cov(model, h, x(dim), mean(dim), cov(dim, dim), work)
   interface sb_mean_cov
      module procedure sbw_mean_cov_f64, sbw_mean_cov_f32
   end interface
   !> status = sb_score(model, h, x(dim), out(dim), work)
   interface sb_score
      module procedure sbw_score_f64, sbw_score_f32
   end interface
   !> status = sb_log_density(model, h, x(dim), out, work)
   interface sb_log_density
      module procedure sbw_log_density_f64, sbw_log_density_f32
   end interface
   !> status = sb_rho(model, h, x(dim), out, work)
   interface sb_rho
      module procedure sbw_rho_f64, sbw_rho_f32
   end interface

contains

   ! ---------------------------------------------------------------------------------------------
   ! Messages and sb_check
   ! ---------------------------------------------------------------------------------------------

   !> A NUL-terminated static C string as a Fortran string.
   function c_string(p) result(s)
      type(c_ptr), intent(in) :: p
      character(len=:), allocatable :: s
      character(kind=c_char), pointer :: chars(:)
      integer :: n, i
      if (.not. c_associated(p)) then
         s = ''
         return
      end if
      call c_f_pointer(p, chars, [4096])
      n = 0
      do while (n < 4096)
         if (chars(n + 1) == c_null_char) exit
         n = n + 1
      end do
      allocate (character(len=n) :: s)
      do i = 1, n
         s(i:i) = chars(i)
      end do
   end function

   !> The library's English message for a status code.
   function sb_message(status) result(msg)
      integer(c_int), intent(in) :: status
      character(len=:), allocatable :: msg
      msg = c_string(sb_status_message(int(status, c_int32_t)))
   end function

   !> The library version, "MAJOR.MINOR.PATCH".
   function sb_version_string() result(v)
      character(len=:), allocatable :: v
      v = c_string(sb_version())
   end function

   !> Optional convenience for programs that want to stop on any error: if status is not SB_OK,
   !> prints "sbridge: [where: ]message (status N)" on error_unit and stops with ERROR STOP.
   !> The library itself never stops; call sites that want to recover test the status instead.
   subroutine sb_check(status, where)
      integer(c_int), intent(in) :: status
      character(len=*), intent(in), optional :: where
      if (status == SB_OK) return
      if (present(where)) then
         write (error_unit, '(a, a, a, a, a, i0, a)') 'sbridge: ', where, ': ', &
            sb_message(status), ' (status ', status, ')'
      else
         write (error_unit, '(a, a, a, i0, a)') 'sbridge: ', sb_message(status), &
            ' (status ', status, ')'
      end if
      error stop 1
   end subroutine

   ! ---------------------------------------------------------------------------------------------
   ! Layouts
   ! ---------------------------------------------------------------------------------------------

   subroutine layout_alloc(layout, sizes)
      type(sbridge_layout), intent(inout) :: layout
      type(sb_layout_sizes_t), intent(in) :: sizes
      if (allocated(layout%nb_offsets)) deallocate (layout%nb_offsets)
      if (allocated(layout%nb_coords)) deallocate (layout%nb_coords)
      if (allocated(layout%tg_offsets)) deallocate (layout%tg_offsets)
      if (allocated(layout%tg_coords)) deallocate (layout%tg_coords)
      ! At least one element each, so that c_loc is always valid.
      allocate (layout%nb_offsets(max(sizes%n_heads + 1, 1_c_size_t)), &
                layout%nb_coords(max(sizes%nb_len, 1_c_size_t)), &
                layout%tg_offsets(max(sizes%n_heads + 1, 1_c_size_t)), &
                layout%tg_coords(max(sizes%tg_len, 1_c_size_t)))
   end subroutine

   subroutine sbw_free_layout(layout)
      type(sbridge_layout), intent(inout) :: layout
      if (allocated(layout%nb_offsets)) deallocate (layout%nb_offsets)
      if (allocated(layout%nb_coords)) deallocate (layout%nb_coords)
      if (allocated(layout%tg_offsets)) deallocate (layout%tg_offsets)
      if (allocated(layout%tg_coords)) deallocate (layout%tg_coords)
      layout%handle = sb_layout_t()
   end subroutine

   !> The C handle of a layout, pointing at the layout's current arrays.
   function sb_layout_handle(layout) result(h)
      type(sbridge_layout), intent(in), target :: layout
      type(sb_layout_t) :: h
      h = layout%handle
      if (allocated(layout%nb_offsets)) then
         h%nb_offsets = c_loc(layout%nb_offsets)
         h%nb_coords = c_loc(layout%nb_coords)
         h%tg_offsets = c_loc(layout%tg_offsets)
         h%tg_coords = c_loc(layout%tg_coords)
      end if
   end function

   !> The single-head layout over d coordinates (the plain bridge).
   function sb_layout_new_single_head(layout, d) result(status)
      type(sbridge_layout), intent(inout), target :: layout
      integer, intent(in) :: d
      integer(c_int) :: status
      type(sb_layout_sizes_t) :: sizes
      status = sb_layout_single_head_sizes(int(d, c_size_t), sizes)
      if (status /= SB_OK) return
      call layout_alloc(layout, sizes)
      status = sb_layout_single_head(int(d, c_size_t), sizes, layout%nb_offsets, &
                                     layout%nb_coords, layout%tg_offsets, layout%tg_coords, &
                                     layout%handle)
   end function

   !> The periodic stencil of radius r on a ring of n points.
   function sb_layout_new_periodic_stencil(layout, n, r) result(status)
      type(sbridge_layout), intent(inout), target :: layout
      integer, intent(in) :: n, r
      integer(c_int) :: status
      type(sb_layout_sizes_t) :: sizes
      status = sb_layout_periodic_stencil_sizes(int(n, c_size_t), int(r, c_size_t), sizes)
      if (status /= SB_OK) return
      call layout_alloc(layout, sizes)
      status = sb_layout_periodic_stencil(int(n, c_size_t), int(r, c_size_t), sizes, &
                                          layout%nb_offsets, layout%nb_coords, &
                                          layout%tg_offsets, layout%tg_coords, layout%handle)
   end function

   !> The slow/closure layout: blocks blocks of k coordinates, heads for the last block,
   !> periodic radius r (k, 2, 1 is the layout of paper 000 section 5.1).
   function sb_layout_new_closure(layout, k, blocks, r) result(status)
      type(sbridge_layout), intent(inout), target :: layout
      integer, intent(in) :: k, blocks, r
      integer(c_int) :: status
      type(sb_layout_sizes_t) :: sizes
      status = sb_layout_closure_sizes(int(k, c_size_t), int(blocks, c_size_t), &
                                       int(r, c_size_t), sizes)
      if (status /= SB_OK) return
      call layout_alloc(layout, sizes)
      status = sb_layout_closure(int(k, c_size_t), int(blocks, c_size_t), int(r, c_size_t), &
                                 sizes, layout%nb_offsets, layout%nb_coords, layout%tg_offsets, &
                                 layout%tg_coords, layout%handle)
   end function

   !> The temporal Markov blocks of paper 000 eq. 57: s components at k + 1 times.
   function sb_layout_new_temporal(layout, s, k) result(status)
      type(sbridge_layout), intent(inout), target :: layout
      integer, intent(in) :: s, k
      integer(c_int) :: status
      type(sb_layout_sizes_t) :: sizes
      status = sb_layout_temporal_sizes(int(s, c_size_t), int(k, c_size_t), sizes)
      if (status /= SB_OK) return
      call layout_alloc(layout, sizes)
      status = sb_layout_temporal(int(s, c_size_t), int(k, c_size_t), sizes, layout%nb_offsets, &
                                  layout%nb_coords, layout%tg_offsets, layout%tg_coords, &
                                  layout%handle)
   end function

   ! ---------------------------------------------------------------------------------------------
   ! Model images
   ! ---------------------------------------------------------------------------------------------

   !> True when the model's words start on a 16-byte boundary (see the alignment note).
   logical function words_aligned(model)
      type(sbridge_model), intent(in), target :: model
      integer(c_intptr_t) :: addr
      addr = transfer(c_loc(model%words), addr)
      words_aligned = modulo(addr, int(SB_IMAGE_ALIGN, c_intptr_t)) == 0
   end function

   !> Makes room for an image of nbytes bytes (zeroed).
   subroutine alloc_words(model, nbytes)
      type(sbridge_model), intent(inout) :: model
      integer(c_size_t), intent(in) :: nbytes
      if (allocated(model%words)) deallocate (model%words)
      allocate (model%words(max((nbytes + 7_c_size_t) / 8_c_size_t, 2_c_size_t)))
      model%words = 0
      model%nbytes = nbytes
      model%handle = sb_model_t()
   end subroutine

   subroutine sbw_free_model(model)
      type(sbridge_model), intent(inout) :: model
      if (allocated(model%words)) deallocate (model%words)
      model%nbytes = 0
      model%handle = sb_model_t()
   end subroutine

   !> The C handle of an opened model, pointing at the model's current words (valid while the
   !> model is neither changed nor deallocated).
   function sb_handle(model) result(h)
      type(sbridge_model), intent(in), target :: model
      type(sb_model_t) :: h
      h = model%handle
      ! Only an opened handle is re-pointed: a model never opened (or freed) stays the empty
      ! handle, which every call reports as SB_NO_MODEL.
      if (allocated(model%words) .and. c_associated(h%image)) h%image = c_loc(model%words)
   end function

   !> Float size recorded in the image header (8 for double, 4 for float, 0 if unknown).
   integer function sb_float_size(model)
      type(sbridge_model), intent(in) :: model
      sb_float_size = 0
      if (.not. allocated(model%words)) return
      if (size(model%words) < 3) return
      ! Bytes 16..20 of the header: the low half of word 3 (little-endian).
      sb_float_size = int(iand(model%words(3), int(z'FFFFFFFF', c_int64_t)))
   end function

   !> Validates the image held in model%words (either float kind) and fills model%handle.
   function sb_open(model) result(status)
      type(sbridge_model), intent(inout), target :: model
      integer(c_int) :: status
      if (.not. allocated(model%words)) then
         status = SB_NO_MODEL
         return
      end if
      if (.not. words_aligned(model)) then
         status = SB_IMAGE_MISALIGNED
         return
      end if
      if (sb_float_size(model) == 4) then
         status = sb_model_open_f32(c_loc(model%words), model%nbytes, model%handle)
      else
         status = sb_model_open_f64(c_loc(model%words), model%nbytes, model%handle)
      end if
   end function

   !> Reads a model image file (raw bytes, as written by sb_save or by a C program), of either
   !> float kind, and opens it. On failure model is unchanged (a model loaded before stays
   !> usable). Statuses: SB_OK, SB_FILE_NOT_FOUND, SB_FILE_EMPTY, SB_NOT_A_FILE (a directory),
   !> SB_FILE_UNREADABLE, or the image status of sb_model_open (SB_IMAGE_BAD_MAGIC, ...).
   function sb_load(model, path) result(status)
      type(sbridge_model), intent(inout), target :: model
      character(len=*), intent(in) :: path
      integer(c_int) :: status
      type(sb_model_t) :: loaded
      type(sbridge_model), target :: fresh
      integer(c_int8_t), pointer :: bytes(:)
      integer(c_size_t) :: nbytes, nwords
      integer(c_int) :: ignored
      ! The library reads, classifies and validates the file into its own aligned buffer...
      status = sb_model_load(trim(path)//c_null_char, loaded)
      if (status /= SB_OK) return
      ! ... which is copied into Fortran-owned words (so that the model is an allocatable that
      ! is deep-copied on assignment and freed automatically) and opened there.
      nbytes = loaded%image_len
      call c_f_pointer(loaded%image, bytes, [nbytes])
      call alloc_words(fresh, nbytes)
      nwords = nbytes / 8_c_size_t
      if (nwords > 0) fresh%words(1:nwords) = transfer(bytes(1:8 * nwords), fresh%words, nwords)
      if (nbytes > 8_c_size_t * nwords) then
         fresh%words(nwords + 1) = transfer([bytes(8 * nwords + 1:), &
            spread(0_c_int8_t, 1, int(8_c_size_t * (nwords + 1) - nbytes))], 0_c_int64_t)
      end if
      ignored = sb_model_free(loaded)
      status = sb_open(fresh)
      if (status /= SB_OK) return
      call move_alloc(fresh%words, model%words)
      model%nbytes = fresh%nbytes
      model%handle = fresh%handle
   end function

   !> Re-validates every byte of the model's image (checksum and values), as opening it did:
   !> SB_OK, or the status opening it now would give. See the module notes for what each call
   !> checks without it.
   function sb_verify(model) result(status)
      type(sbridge_model), intent(in), target :: model
      integer(c_int) :: status
      status = sb_model_verify(sb_handle(model))
   end function

   !> Writes the model image bytes to a file.
   function sb_save(model, path) result(status)
      type(sbridge_model), intent(in) :: model
      character(len=*), intent(in) :: path
      integer(c_int) :: status
      integer :: unit, ios
      integer(c_int8_t), allocatable :: bytes(:)
      status = SB_NULL_POINTER
      if (.not. allocated(model%words)) return
      status = SB_INVALID_ARGUMENT
      allocate (bytes(model%nbytes))
      bytes(:) = transfer(model%words, 0_c_int8_t, int(model%nbytes))
      open (newunit=unit, file=path, access='stream', form='unformatted', status='replace', &
            action='write', iostat=ios)
      if (ios /= 0) return
      write (unit, iostat=ios) bytes
      close (unit)
      if (ios == 0) status = SB_OK
   end function

   !> What the model holds.
   function sb_info(model, info) result(status)
      type(sbridge_model), intent(in), target :: model
      type(sb_model_info_t), intent(inout) :: info
      integer(c_int) :: status
      status = sb_model_info(sb_handle(model), info)
   end function

   !> Head h (0-based) of the model.
   function sb_head(model, h, info) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: h
      type(sb_head_info_t), intent(inout) :: info
      integer(c_int) :: status
      status = sb_head_info(sb_handle(model), int(h, c_size_t), info)
   end function

   !> The work-space lengths each kind of call needs on this model.
   function sb_workspace(model, lens) result(status)
      type(sbridge_model), intent(in), target :: model
      type(sb_workspace_lens_t), intent(inout) :: lens
      integer(c_int) :: status
      status = sb_workspace_lens(sb_handle(model), lens)
   end function

   !> Fits every head of layout on x(d, M) (one sample per column) into a new image owned by
   !> model, and opens it. SB_NOT_CONVERGED still leaves a complete, opened image.
   function sbw_fit_f64(model, x, layout, cfg, scales, report) result(status)
      type(sbridge_model), intent(inout), target :: model
      real(c_double), intent(in), contiguous :: x(:, :)
      type(sbridge_layout), intent(in), target :: layout
      type(sb_fit_config_t), intent(in) :: cfg
      real(c_double), intent(in), contiguous, target, optional :: scales(:)
      type(sb_fit_report_t), intent(inout), target, optional :: report
      integer(c_int) :: status, open_status
      type(sb_layout_t) :: lh
      integer(c_size_t) :: nbytes, m, d, wlen
      type(c_ptr) :: sp, rp
      real(c_double), allocatable :: work(:)
      d = size(x, 1, c_size_t)
      m = size(x, 2, c_size_t)
      lh = sb_layout_handle(layout)
      sp = c_null_ptr
      rp = c_null_ptr
      if (present(scales)) then
         if (size(scales, 1, c_size_t) /= d) then
            status = SB_LENGTH_MISMATCH
            return
         end if
         sp = c_loc(scales)
      end if
      if (present(report)) rp = c_loc(report)
      status = sb_image_len_f64(lh, m, merge(1_c_int32_t, 0_c_int32_t, &
         cfg%variable_bandwidth /= 0), merge(1_c_int32_t, 0_c_int32_t, present(scales)), nbytes)
      if (status /= SB_OK) return
      call alloc_words(model, nbytes)
      if (.not. words_aligned(model)) then
         status = SB_IMAGE_MISALIGNED
         return
      end if
      wlen = sb_fit_workspace_len(m)
      allocate (work(max(wlen, 1_c_size_t)))
      status = sb_fit_model_f64(x, m, d, sp, lh, cfg, c_loc(model%words), nbytes, work, wlen, rp)
      if (status == SB_OK .or. status == SB_NOT_CONVERGED) then
         open_status = sb_model_open_f64(c_loc(model%words), nbytes, model%handle)
         if (open_status /= SB_OK) status = open_status
      end if
   end function

   function sbw_fit_f32(model, x, layout, cfg, scales, report) result(status)
      type(sbridge_model), intent(inout), target :: model
      real(c_float), intent(in), contiguous :: x(:, :)
      type(sbridge_layout), intent(in), target :: layout
      type(sb_fit_config_t), intent(in) :: cfg
      real(c_float), intent(in), contiguous, target, optional :: scales(:)
      type(sb_fit_report_t), intent(inout), target, optional :: report
      integer(c_int) :: status, open_status
      type(sb_layout_t) :: lh
      integer(c_size_t) :: nbytes, m, d, wlen
      type(c_ptr) :: sp, rp
      real(c_float), allocatable :: work(:)
      d = size(x, 1, c_size_t)
      m = size(x, 2, c_size_t)
      lh = sb_layout_handle(layout)
      sp = c_null_ptr
      rp = c_null_ptr
      if (present(scales)) then
         if (size(scales, 1, c_size_t) /= d) then
            status = SB_LENGTH_MISMATCH
            return
         end if
         sp = c_loc(scales)
      end if
      if (present(report)) rp = c_loc(report)
      status = sb_image_len_f32(lh, m, merge(1_c_int32_t, 0_c_int32_t, &
         cfg%variable_bandwidth /= 0), merge(1_c_int32_t, 0_c_int32_t, present(scales)), nbytes)
      if (status /= SB_OK) return
      call alloc_words(model, nbytes)
      if (.not. words_aligned(model)) then
         status = SB_IMAGE_MISALIGNED
         return
      end if
      wlen = sb_fit_workspace_len(m)
      allocate (work(max(wlen, 1_c_size_t)))
      status = sb_fit_model_f32(x, m, d, sp, lh, cfg, c_loc(model%words), nbytes, work, wlen, rp)
      if (status == SB_OK .or. status == SB_NOT_CONVERGED) then
         open_status = sb_model_open_f32(c_loc(model%words), nbytes, model%handle)
         if (open_status /= SB_OK) status = open_status
      end if
   end function

   ! ---------------------------------------------------------------------------------------------
   ! The closure call
   ! ---------------------------------------------------------------------------------------------

   !> One column: z_coords (0-based) clamped to z_star; psi (the free coordinates in increasing
   !> order) is the warm start and receives the sample. work needs sb_workspace(...)%closure.
   function sbw_closure_f64(model, cfg, z_coords, z_star, psi, rng, work) result(status)
      type(sbridge_model), intent(in), target :: model
      type(sb_closure_config_t), intent(in) :: cfg
      integer(c_size_t), intent(in) :: z_coords(:)
      real(c_double), intent(in) :: z_star(:)
      real(c_double), intent(inout) :: psi(:), work(:)
      type(sb_rng_t), intent(inout) :: rng
      integer(c_int) :: status
      if (size(z_star) /= size(z_coords)) then
         status = SB_LENGTH_MISMATCH
         return
      end if
      status = sb_closure_f64(sb_handle(model), cfg, z_coords, size(z_coords, 1, c_size_t), &
                              z_star, psi, size(psi, 1, c_size_t), rng, work, &
                              size(work, 1, c_size_t))
   end function

   function sbw_closure_f32(model, cfg, z_coords, z_star, psi, rng, work) result(status)
      type(sbridge_model), intent(in), target :: model
      type(sb_closure_config_t), intent(in) :: cfg
      integer(c_size_t), intent(in) :: z_coords(:)
      real(c_float), intent(in) :: z_star(:)
      real(c_float), intent(inout) :: psi(:), work(:)
      type(sb_rng_t), intent(inout) :: rng
      integer(c_int) :: status
      if (size(z_star) /= size(z_coords)) then
         status = SB_LENGTH_MISMATCH
         return
      end if
      status = sb_closure_f32(sb_handle(model), cfg, z_coords, size(z_coords, 1, c_size_t), &
                              z_star, psi, size(psi, 1, c_size_t), rng, work, &
                              size(work, 1, c_size_t))
   end function

   !> ncol independent columns: z_star(nz, ncol), psi(npsi, ncol), rngs(ncol). On failure
   !> failed_col (optional) receives the failing column's 0-based index.
   function sbw_closure_batch_f64(model, cfg, z_coords, z_star, psi, rngs, work, failed_col) &
      result(status)
      type(sbridge_model), intent(in), target :: model
      type(sb_closure_config_t), intent(in) :: cfg
      integer(c_size_t), intent(in) :: z_coords(:)
      real(c_double), intent(in) :: z_star(:, :)
      real(c_double), intent(inout) :: psi(:, :), work(:)
      type(sb_rng_t), intent(inout) :: rngs(:)
      integer(c_size_t), intent(inout), target, optional :: failed_col
      integer(c_int) :: status
      type(c_ptr) :: fp
      if (size(z_star, 1) /= size(z_coords) .or. size(z_star, 2) /= size(rngs) .or. &
          size(psi, 2) /= size(rngs)) then
         status = SB_LENGTH_MISMATCH
         return
      end if
      fp = c_null_ptr
      if (present(failed_col)) fp = c_loc(failed_col)
      status = sb_closure_batch_f64(sb_handle(model), cfg, z_coords, size(z_coords, 1, c_size_t), &
                                    size(rngs, 1, c_size_t), z_star, psi, &
                                    size(psi, 1, c_size_t), rngs, work, size(work, 1, c_size_t), fp)
   end function

   function sbw_closure_batch_f32(model, cfg, z_coords, z_star, psi, rngs, work, failed_col) &
      result(status)
      type(sbridge_model), intent(in), target :: model
      type(sb_closure_config_t), intent(in) :: cfg
      integer(c_size_t), intent(in) :: z_coords(:)
      real(c_float), intent(in) :: z_star(:, :)
      real(c_float), intent(inout) :: psi(:, :), work(:)
      type(sb_rng_t), intent(inout) :: rngs(:)
      integer(c_size_t), intent(inout), target, optional :: failed_col
      integer(c_int) :: status
      type(c_ptr) :: fp
      if (size(z_star, 1) /= size(z_coords) .or. size(z_star, 2) /= size(rngs) .or. &
          size(psi, 2) /= size(rngs)) then
         status = SB_LENGTH_MISMATCH
         return
      end if
      fp = c_null_ptr
      if (present(failed_col)) fp = c_loc(failed_col)
      status = sb_closure_batch_f32(sb_handle(model), cfg, z_coords, size(z_coords, 1, c_size_t), &
                                    size(rngs, 1, c_size_t), z_star, psi, &
                                    size(psi, 1, c_size_t), rngs, work, size(work, 1, c_size_t), fp)
   end function

   !> sb_closure with default-kind integer z_coords (0-based), copied to c_size_t on the stack.
   function sbw_closure_f64_i(model, cfg, z_coords, z_star, psi, rng, work) result(status)
      type(sbridge_model), intent(in), target :: model
      type(sb_closure_config_t), intent(in) :: cfg
      integer, intent(in) :: z_coords(:)
      real(c_double), intent(in) :: z_star(:)
      real(c_double), intent(inout) :: psi(:), work(:)
      type(sb_rng_t), intent(inout) :: rng
      integer(c_int) :: status
      integer(c_size_t) :: zc(size(z_coords))
      if (any(z_coords < 0)) then
         status = SB_INVALID_INDEX
         return
      end if
      zc = int(z_coords, c_size_t)
      status = sbw_closure_f64(model, cfg, zc, z_star, psi, rng, work)
   end function

   !> sb_closure_batch with default-kind integer z_coords (0-based).
   function sbw_closure_batch_f64_i(model, cfg, z_coords, z_star, psi, rngs, work, failed_col) &
      result(status)
      type(sbridge_model), intent(in), target :: model
      type(sb_closure_config_t), intent(in) :: cfg
      integer, intent(in) :: z_coords(:)
      real(c_double), intent(in) :: z_star(:, :)
      real(c_double), intent(inout) :: psi(:, :), work(:)
      type(sb_rng_t), intent(inout) :: rngs(:)
      integer(c_size_t), intent(inout), target, optional :: failed_col
      integer(c_int) :: status
      integer(c_size_t) :: zc(size(z_coords))
      if (any(z_coords < 0)) then
         status = SB_INVALID_INDEX
         return
      end if
      zc = int(z_coords, c_size_t)
      status = sbw_closure_batch_f64(model, cfg, zc, z_star, psi, rngs, work, failed_col)
   end function

   !> Each head's effective sample size at the closure state (z_star, psi): see
   !> sb_closure_ess_f64 in sbridge.h. ess has one value per head; work as for sb_closure.
   function sbw_closure_ess_f64(model, z_coords, z_star, psi, ess, work) result(status)
      type(sbridge_model), intent(in), target :: model
      integer(c_size_t), intent(in) :: z_coords(:)
      real(c_double), intent(in) :: z_star(:), psi(:)
      real(c_double), intent(inout) :: ess(:), work(:)
      integer(c_int) :: status
      if (size(z_star) /= size(z_coords)) then
         status = SB_LENGTH_MISMATCH
         return
      end if
      status = sb_closure_ess_f64(sb_handle(model), z_coords, size(z_coords, 1, c_size_t), &
                                  z_star, psi, size(psi, 1, c_size_t), ess, &
                                  size(ess, 1, c_size_t), work, size(work, 1, c_size_t))
   end function

   function sbw_closure_ess_f64_i(model, z_coords, z_star, psi, ess, work) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: z_coords(:)
      real(c_double), intent(in) :: z_star(:), psi(:)
      real(c_double), intent(inout) :: ess(:), work(:)
      integer(c_int) :: status
      integer(c_size_t) :: zc(size(z_coords))
      if (any(z_coords < 0)) then
         status = SB_INVALID_INDEX
         return
      end if
      zc = int(z_coords, c_size_t)
      status = sbw_closure_ess_f64(model, zc, z_star, psi, ess, work)
   end function

   !> Coordinate c of training sample j (both 0-based).
   function sbw_training_value_f64(model, j, c, out) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: j, c
      real(c_double), intent(inout) :: out
      integer(c_int) :: status
      if (j < 0 .or. c < 0) then
         status = SB_INVALID_INDEX
         return
      end if
      status = sb_training_value_f64(sb_handle(model), int(j, c_size_t), int(c, c_size_t), out)
   end function

   !> sb_closure with default-kind integer z_coords (0-based), copied to c_size_t on the stack.
   function sbw_closure_f32_i(model, cfg, z_coords, z_star, psi, rng, work) result(status)
      type(sbridge_model), intent(in), target :: model
      type(sb_closure_config_t), intent(in) :: cfg
      integer, intent(in) :: z_coords(:)
      real(c_float), intent(in) :: z_star(:)
      real(c_float), intent(inout) :: psi(:), work(:)
      type(sb_rng_t), intent(inout) :: rng
      integer(c_int) :: status
      integer(c_size_t) :: zc(size(z_coords))
      if (any(z_coords < 0)) then
         status = SB_INVALID_INDEX
         return
      end if
      zc = int(z_coords, c_size_t)
      status = sbw_closure_f32(model, cfg, zc, z_star, psi, rng, work)
   end function

   !> sb_closure_batch with default-kind integer z_coords (0-based).
   function sbw_closure_batch_f32_i(model, cfg, z_coords, z_star, psi, rngs, work, failed_col) &
      result(status)
      type(sbridge_model), intent(in), target :: model
      type(sb_closure_config_t), intent(in) :: cfg
      integer, intent(in) :: z_coords(:)
      real(c_float), intent(in) :: z_star(:, :)
      real(c_float), intent(inout) :: psi(:, :), work(:)
      type(sb_rng_t), intent(inout) :: rngs(:)
      integer(c_size_t), intent(inout), target, optional :: failed_col
      integer(c_int) :: status
      integer(c_size_t) :: zc(size(z_coords))
      if (any(z_coords < 0)) then
         status = SB_INVALID_INDEX
         return
      end if
      zc = int(z_coords, c_size_t)
      status = sbw_closure_batch_f32(model, cfg, zc, z_star, psi, rngs, work, failed_col)
   end function

   !> Each head's effective sample size at the closure state (z_star, psi): see
   !> sb_closure_ess_f64 in sbridge.h. ess has one value per head; work as for sb_closure.
   function sbw_closure_ess_f32(model, z_coords, z_star, psi, ess, work) result(status)
      type(sbridge_model), intent(in), target :: model
      integer(c_size_t), intent(in) :: z_coords(:)
      real(c_float), intent(in) :: z_star(:), psi(:)
      real(c_float), intent(inout) :: ess(:), work(:)
      integer(c_int) :: status
      if (size(z_star) /= size(z_coords)) then
         status = SB_LENGTH_MISMATCH
         return
      end if
      status = sb_closure_ess_f32(sb_handle(model), z_coords, size(z_coords, 1, c_size_t), &
                                  z_star, psi, size(psi, 1, c_size_t), ess, &
                                  size(ess, 1, c_size_t), work, size(work, 1, c_size_t))
   end function

   function sbw_closure_ess_f32_i(model, z_coords, z_star, psi, ess, work) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: z_coords(:)
      real(c_float), intent(in) :: z_star(:), psi(:)
      real(c_float), intent(inout) :: ess(:), work(:)
      integer(c_int) :: status
      integer(c_size_t) :: zc(size(z_coords))
      if (any(z_coords < 0)) then
         status = SB_INVALID_INDEX
         return
      end if
      zc = int(z_coords, c_size_t)
      status = sbw_closure_ess_f32(model, zc, z_star, psi, ess, work)
   end function

   !> Coordinate c of training sample j (both 0-based).
   function sbw_training_value_f32(model, j, c, out) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: j, c
      real(c_float), intent(inout) :: out
      integer(c_int) :: status
      if (j < 0 .or. c < 0) then
         status = SB_INVALID_INDEX
         return
      end if
      status = sb_training_value_f32(sb_handle(model), int(j, c_size_t), int(c, c_size_t), out)
   end function

   !> sb_rng_seed for default-kind integers (seed, stream >= 0 are used as unsigned values).
   function sbw_seed_default(rng, seed, stream) result(status)
      type(sb_rng_t), intent(inout) :: rng
      integer, intent(in) :: seed, stream
      integer(c_int) :: status
      status = sb_rng_seed(int(seed, c_int64_t), int(stream, c_int64_t), rng)
   end function

   !> sb_rng_seed for integer(c_int64_t) seeds and streams (the C uint64_t bits).
   function sbw_seed_int64(rng, seed, stream) result(status)
      type(sb_rng_t), intent(inout) :: rng
      integer(c_int64_t), intent(in) :: seed, stream
      integer(c_int) :: status
      status = sb_rng_seed(seed, stream, rng)
   end function

   !> size(out) standard normal deviates from rng (the count is the array's, so it cannot write
   !> past it).
   function sbw_normals(rng, out) result(status)
      type(sb_rng_t), intent(inout) :: rng
      real(c_double), intent(inout), contiguous :: out(:)
      integer(c_int) :: status
      status = sb_rng_normals(rng, out, size(out, 1, c_size_t))
   end function

   ! ---------------------------------------------------------------------------------------------
   ! Sampler chains
   ! ---------------------------------------------------------------------------------------------

   !> steps steps of cfg's scheme from x (in/out); half receives the last noisy half-step.
   !> grad/user: c_funloc of a bind(c) sb_gradient_f64 and its user pointer (Bayesian schemes).
   !> clamp_coords (0-based) / clamp_values: conditioning. record_half / record_proj (d, steps):
   !> every half-step / new state.
   function sbw_chain_f64(model, cfg, x, half, steps, rng, work, grad, user, clamp_coords, &
                          clamp_values, record_half, record_proj) result(status)
      type(sbridge_model), intent(in), target :: model
      type(sb_step_config_t), intent(in) :: cfg
      real(c_double), intent(inout), contiguous :: x(:), half(:), work(:)
      integer, intent(in) :: steps
      type(sb_rng_t), intent(inout) :: rng
      type(c_funptr), intent(in), optional :: grad
      type(c_ptr), intent(in), optional :: user
      integer(c_size_t), intent(in), contiguous, target, optional :: clamp_coords(:)
      real(c_double), intent(in), contiguous, target, optional :: clamp_values(:)
      real(c_double), intent(inout), contiguous, target, optional :: record_half(:, :), &
                                                                    record_proj(:, :)
      integer(c_int) :: status
      type(c_funptr) :: g
      type(c_ptr) :: u, cc, cv, rh, rp
      integer(c_size_t) :: nc, d, st
      d = size(x, 1, c_size_t)
      st = int(steps, c_size_t)
      g = c_null_funptr
      u = c_null_ptr
      cc = c_null_ptr
      cv = c_null_ptr
      rh = c_null_ptr
      rp = c_null_ptr
      nc = 0
      if (present(grad)) g = grad
      if (present(user)) u = user
      if (present(clamp_coords) .neqv. present(clamp_values)) then
         status = SB_NULL_POINTER
         return
      end if
      if (present(clamp_coords)) then
         if (size(clamp_coords) /= size(clamp_values)) then
            status = SB_LENGTH_MISMATCH
            return
         end if
         nc = size(clamp_coords, 1, c_size_t)
         if (nc > 0) then
            cc = c_loc(clamp_coords)
            cv = c_loc(clamp_values)
         end if
      end if
      if (present(record_half)) then
         if (size(record_half, 1, c_size_t) * size(record_half, 2, c_size_t) < d * st) then
            status = SB_BUFFER_TOO_SMALL
            return
         end if
         rh = c_loc(record_half)
      end if
      if (present(record_proj)) then
         if (size(record_proj, 1, c_size_t) * size(record_proj, 2, c_size_t) < d * st) then
            status = SB_BUFFER_TOO_SMALL
            return
         end if
         rp = c_loc(record_proj)
      end if
      if (size(half, 1, c_size_t) /= d) then
         status = SB_LENGTH_MISMATCH
         return
      end if
      status = sb_chain_f64(sb_handle(model), cfg, g, u, cc, cv, nc, x, half, d, st, rh, rp, rng, &
                            work, size(work, 1, c_size_t))
   end function

   function sbw_chain_f32(model, cfg, x, half, steps, rng, work, grad, user, clamp_coords, &
                          clamp_values, record_half, record_proj) result(status)
      type(sbridge_model), intent(in), target :: model
      type(sb_step_config_t), intent(in) :: cfg
      real(c_float), intent(inout), contiguous :: x(:), half(:), work(:)
      integer, intent(in) :: steps
      type(sb_rng_t), intent(inout) :: rng
      type(c_funptr), intent(in), optional :: grad
      type(c_ptr), intent(in), optional :: user
      integer(c_size_t), intent(in), contiguous, target, optional :: clamp_coords(:)
      real(c_float), intent(in), contiguous, target, optional :: clamp_values(:)
      real(c_float), intent(inout), contiguous, target, optional :: record_half(:, :), &
                                                                   record_proj(:, :)
      integer(c_int) :: status
      type(c_funptr) :: g
      type(c_ptr) :: u, cc, cv, rh, rp
      integer(c_size_t) :: nc, d, st
      d = size(x, 1, c_size_t)
      st = int(steps, c_size_t)
      g = c_null_funptr
      u = c_null_ptr
      cc = c_null_ptr
      cv = c_null_ptr
      rh = c_null_ptr
      rp = c_null_ptr
      nc = 0
      if (present(grad)) g = grad
      if (present(user)) u = user
      if (present(clamp_coords) .neqv. present(clamp_values)) then
         status = SB_NULL_POINTER
         return
      end if
      if (present(clamp_coords)) then
         if (size(clamp_coords) /= size(clamp_values)) then
            status = SB_LENGTH_MISMATCH
            return
         end if
         nc = size(clamp_coords, 1, c_size_t)
         if (nc > 0) then
            cc = c_loc(clamp_coords)
            cv = c_loc(clamp_values)
         end if
      end if
      if (present(record_half)) then
         if (size(record_half, 1, c_size_t) * size(record_half, 2, c_size_t) < d * st) then
            status = SB_BUFFER_TOO_SMALL
            return
         end if
         rh = c_loc(record_half)
      end if
      if (present(record_proj)) then
         if (size(record_proj, 1, c_size_t) * size(record_proj, 2, c_size_t) < d * st) then
            status = SB_BUFFER_TOO_SMALL
            return
         end if
         rp = c_loc(record_proj)
      end if
      if (size(half, 1, c_size_t) /= d) then
         status = SB_LENGTH_MISMATCH
         return
      end if
      status = sb_chain_f32(sb_handle(model), cfg, g, u, cc, cv, nc, x, half, d, st, rh, rp, rng, &
                            work, size(work, 1, c_size_t))
   end function

   ! ---------------------------------------------------------------------------------------------
   ! Bridge queries on head h (0-based); x in the head's coordinate order
   ! ---------------------------------------------------------------------------------------------

   function sbw_weights_f64(model, h, x, w, work) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: h
      real(c_double), intent(in), contiguous :: x(:)
      real(c_double), intent(inout), contiguous :: w(:), work(:)
      integer(c_int) :: status
      status = sb_weights_f64(sb_handle(model), int(h, c_size_t), x, size(x, 1, c_size_t), w, &
                              size(w, 1, c_size_t), work, size(work, 1, c_size_t))
   end function
   function sbw_weights_f32(model, h, x, w, work) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: h
      real(c_float), intent(in), contiguous :: x(:)
      real(c_float), intent(inout), contiguous :: w(:), work(:)
      integer(c_int) :: status
      status = sb_weights_f32(sb_handle(model), int(h, c_size_t), x, size(x, 1, c_size_t), w, &
                              size(w, 1, c_size_t), work, size(work, 1, c_size_t))
   end function

   function sbw_log_weights_f64(model, h, x, out, work) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: h
      real(c_double), intent(in), contiguous :: x(:)
      real(c_double), intent(inout), contiguous :: out(:), work(:)
      integer(c_int) :: status
      status = sb_log_weights_f64(sb_handle(model), int(h, c_size_t), x, size(x, 1, c_size_t), &
                                  out, size(out, 1, c_size_t), work, size(work, 1, c_size_t))
   end function
   function sbw_log_weights_f32(model, h, x, out, work) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: h
      real(c_float), intent(in), contiguous :: x(:)
      real(c_float), intent(inout), contiguous :: out(:), work(:)
      integer(c_int) :: status
      status = sb_log_weights_f32(sb_handle(model), int(h, c_size_t), x, size(x, 1, c_size_t), &
                                  out, size(out, 1, c_size_t), work, size(work, 1, c_size_t))
   end function

   function sbw_mean_f64(model, h, x, out, work) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: h
      real(c_double), intent(in), contiguous :: x(:)
      real(c_double), intent(inout), contiguous :: out(:), work(:)
      integer(c_int) :: status
      status = sb_mean_f64(sb_handle(model), int(h, c_size_t), x, size(x, 1, c_size_t), out, &
                           size(out, 1, c_size_t), work, size(work, 1, c_size_t))
   end function
   function sbw_mean_f32(model, h, x, out, work) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: h
      real(c_float), intent(in), contiguous :: x(:)
      real(c_float), intent(inout), contiguous :: out(:), work(:)
      integer(c_int) :: status
      status = sb_mean_f32(sb_handle(model), int(h, c_size_t), x, size(x, 1, c_size_t), out, &
                           size(out, 1, c_size_t), work, size(work, 1, c_size_t))
   end function

   !> cov(dim, dim): the library writes it row-major; C(x) is symmetric, so the Fortran
   !> column-major reading is the same matrix.
   function sbw_mean_cov_f64(model, h, x, mean, cov, work) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: h
      real(c_double), intent(in), contiguous :: x(:)
      real(c_double), intent(inout), contiguous :: mean(:), cov(:, :), work(:)
      integer(c_int) :: status
      status = sb_mean_cov_f64(sb_handle(model), int(h, c_size_t), x, size(x, 1, c_size_t), &
                               mean, size(mean, 1, c_size_t), cov, size(cov, kind=c_size_t), &
                               work, size(work, 1, c_size_t))
   end function
   function sbw_mean_cov_f32(model, h, x, mean, cov, work) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: h
      real(c_float), intent(in), contiguous :: x(:)
      real(c_float), intent(inout), contiguous :: mean(:), cov(:, :), work(:)
      integer(c_int) :: status
      status = sb_mean_cov_f32(sb_handle(model), int(h, c_size_t), x, size(x, 1, c_size_t), &
                               mean, size(mean, 1, c_size_t), cov, size(cov, kind=c_size_t), &
                               work, size(work, 1, c_size_t))
   end function

   function sbw_score_f64(model, h, x, out, work) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: h
      real(c_double), intent(in), contiguous :: x(:)
      real(c_double), intent(inout), contiguous :: out(:), work(:)
      integer(c_int) :: status
      status = sb_score_f64(sb_handle(model), int(h, c_size_t), x, size(x, 1, c_size_t), out, &
                            size(out, 1, c_size_t), work, size(work, 1, c_size_t))
   end function
   function sbw_score_f32(model, h, x, out, work) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: h
      real(c_float), intent(in), contiguous :: x(:)
      real(c_float), intent(inout), contiguous :: out(:), work(:)
      integer(c_int) :: status
      status = sb_score_f32(sb_handle(model), int(h, c_size_t), x, size(x, 1, c_size_t), out, &
                            size(out, 1, c_size_t), work, size(work, 1, c_size_t))
   end function

   function sbw_log_density_f64(model, h, x, out, work) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: h
      real(c_double), intent(in), contiguous :: x(:)
      real(c_double), intent(inout) :: out
      real(c_double), intent(inout), contiguous :: work(:)
      integer(c_int) :: status
      status = sb_log_density_f64(sb_handle(model), int(h, c_size_t), x, size(x, 1, c_size_t), &
                                  out, work, size(work, 1, c_size_t))
   end function
   function sbw_log_density_f32(model, h, x, out, work) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: h
      real(c_float), intent(in), contiguous :: x(:)
      real(c_float), intent(inout) :: out
      real(c_float), intent(inout), contiguous :: work(:)
      integer(c_int) :: status
      status = sb_log_density_f32(sb_handle(model), int(h, c_size_t), x, size(x, 1, c_size_t), &
                                  out, work, size(work, 1, c_size_t))
   end function

   function sbw_rho_f64(model, h, x, out, work) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: h
      real(c_double), intent(in), contiguous :: x(:)
      real(c_double), intent(inout) :: out
      real(c_double), intent(inout), contiguous :: work(:)
      integer(c_int) :: status
      status = sb_rho_f64(sb_handle(model), int(h, c_size_t), x, size(x, 1, c_size_t), out, work, &
                          size(work, 1, c_size_t))
   end function
   function sbw_rho_f32(model, h, x, out, work) result(status)
      type(sbridge_model), intent(in), target :: model
      integer, intent(in) :: h
      real(c_float), intent(in), contiguous :: x(:)
      real(c_float), intent(inout) :: out
      real(c_float), intent(inout), contiguous :: work(:)
      integer(c_int) :: status
      status = sb_rho_f32(sb_handle(model), int(h, c_size_t), x, size(x, 1, c_size_t), out, work, &
                          size(work, 1, c_size_t))
   end function

end module sbridge
