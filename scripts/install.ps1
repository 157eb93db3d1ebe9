<#
.SYNOPSIS
    Installs the rawlink NDIS protocol driver from a driver package folder and starts it.

.DESCRIPTION
    Steps, each with its own exit code on failure:
      1  administrator check
      2  package folder: rawlink.inf, rawlink.sys, rawlink.cat
      3  signature: test signing on, or a Microsoft-signed (WHQL/attestation) package; the catalog's
         publisher must be trusted so that the install does not stop at a publisher prompt
      4  netcfg.exe -v -l <package>\rawlink.inf -c p -i RL_RAWLINK, unless the RAWLINK service already exists
         (protocols are installed through INetCfg, not pnputil)
      5  sc.exe start RAWLINK  (the service is demand-start: StartType 3)
      6  open \\.\RawLink (the control device the driver creates)
    Exit code 0: installed, running, device opens.

    Works in Windows PowerShell 5.1 and PowerShell 7. Run it from an elevated prompt. Every native program's exit
    code is checked; no program's text output is parsed (it is translated). docs/WINDOWS.md, section 4, lists the
    same steps as commands to type.

.PARAMETER PackageDir
    The folder with rawlink.inf, rawlink.sys and rawlink.cat. Default: the folder of this script if it holds
    rawlink.inf, else ..\target\rawlink-package, ..\target\release\rawlink_package or
    ..\target\debug\rawlink_package next to this script (the first that exists).

.PARAMETER TrustTestCertificate
    Adds the package's test certificate (WDRLocalTestCert.cer, or the certificate that signed rawlink.cat) to the
    LocalMachine Root and TrustedPublisher stores. Only for test machines.

.PARAMETER NoStart
    Install only; do not start the service or open the device.

.EXAMPLE
    .\scripts\install.ps1 -PackageDir .\target\debug\rawlink_package -TrustTestCertificate
#>
[CmdletBinding()]
param(
    [string] $PackageDir,
    [switch] $TrustTestCertificate,
    [switch] $NoStart
)

Set-StrictMode -Version 3
$ErrorActionPreference = 'Stop'
# PowerShell 7.3+: a native program's non-zero exit code is handled below, never turned into an error.
$PSNativeCommandUseErrorActionPreference = $false

$ComponentId = 'RL_RAWLINK'       # Models hardware id in rawlink.inf (netcfg -i)
$ServiceName = 'RAWLINK'          # AddService name = NDIS protocol name
$DevicePath  = '\\.\RawLink'      # symbolic link \DosDevices\Global\RawLink
# netcfg's success code asking for a restart (Netcfgx.h), should netcfg.exe exit with it.
$NetcfgRebootCode = 0x0004A020

function Fail([int] $Code, [string] $Message) {
    Write-Host "rawlink install: FAILED (exit $Code): $Message" -ForegroundColor Red
    exit $Code
}
function Step([string] $Message) { Write-Host "==> $Message" -ForegroundColor Cyan }
function Info([string] $Message) { Write-Host "    $Message" }

# Runs a native program, prints its output, returns its exit code; exits with $FailCode if it cannot be started.
# Its standard error is merged into its output as text: Windows PowerShell 5.1 wraps each stderr line of a
# redirected native program in an ErrorRecord, which the script-wide 'Stop' preference would make a terminating
# error. Here the preference is 'Continue' (a variable local to this function), so such a line is only printed.
function Invoke-Native([int] $FailCode, [string] $Program, [string[]] $Arguments) {
    $ErrorActionPreference = 'Continue'
    $command = @(Get-Command -Name $Program -CommandType Application -ErrorAction SilentlyContinue)
    if ($command.Count -eq 0) { Fail $FailCode "$Program was not found (it comes with Windows: is PATH intact?)." }
    Info ("> $Program " + ($Arguments -join ' '))
    & $command[0].Path @Arguments 2>&1 | ForEach-Object { Info "$_" }
    return [int] $LASTEXITCODE
}

# --- 1. Administrator ---------------------------------------------------------------------------------------------
Step 'Checking for administrator rights'
$identity = [Security.Principal.WindowsIdentity]::GetCurrent()
$principal = New-Object Security.Principal.WindowsPrincipal($identity)
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Fail 1 'run this script from an elevated PowerShell (Run as administrator).'
}

# --- 2. Package folder ----------------------------------------------------------------------------------------------
Step 'Finding the driver package'
# $PackageDir is a [string] parameter: it is only read, never assigned (a [string] variable converts whatever is
# assigned to it, so a PathInfo stored there would lose its properties). The folder found is $package.
if ($PackageDir) {
    $candidates = @($PackageDir)
} else {
    $candidates = @(
        $PSScriptRoot,
        (Join-Path $PSScriptRoot '..\target\rawlink-package'),
        (Join-Path $PSScriptRoot '..\target\release\rawlink_package'),
        (Join-Path $PSScriptRoot '..\target\debug\rawlink_package')
    )
}
$found = @($candidates | Where-Object { Test-Path -LiteralPath (Join-Path $_ 'rawlink.inf') -PathType Leaf })
if ($found.Count -eq 0) {
    Fail 2 ("no rawlink.inf found in: " + ($candidates -join '; ') +
        ". Build the package (cargo make on Windows, cargo xtask build on Linux) or pass -PackageDir.")
}
$package = (Resolve-Path -LiteralPath $found[0]).ProviderPath
$inf = Join-Path $package 'rawlink.inf'
$sys = Join-Path $package 'rawlink.sys'
$cat = Join-Path $package 'rawlink.cat'
Info "package: $package"
if (-not (Test-Path -LiteralPath $sys -PathType Leaf)) { Fail 2 "$sys is missing." }
if (-not (Test-Path -LiteralPath $cat -PathType Leaf)) {
    Fail 2 ("$cat is missing: the package has no catalog, so Windows treats it as unsigned. A package built on " +
        "Linux must be catalogued and signed on Windows first (docs/WINDOWS.md, 'Signing a package built on Linux'), " +
        "or build it on Windows with cargo make.")
}

# --- 3. Signature -----------------------------------------------------------------------------------------------------
Step 'Checking signatures and test signing'
$sysSignature = Get-AuthenticodeSignature -LiteralPath $sys
$catSignature = Get-AuthenticodeSignature -LiteralPath $cat
function Show-Signature([string] $Name, $Signature) {
    $signer = if ($Signature.SignerCertificate) { $Signature.SignerCertificate.Subject } else { '(no signer)' }
    Info ("{0}: {1} {2}" -f $Name, $Signature.Status, $signer)
}
Show-Signature 'rawlink.sys' $sysSignature
Show-Signature 'rawlink.cat' $catSignature
if (-not $catSignature.SignerCertificate) {
    Fail 3 'rawlink.cat is not signed. Sign it (signtool sign /fd SHA256 ...) or build with cargo make, which test-signs it.'
}

# Test signing as the running system sees it: the boot loader's options of this boot, a registry value that is the
# same in every language (bcdedit's output is translated, so it is not read).
$startOptions = [string] (Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Control' -Name SystemStartOptions).SystemStartOptions
$testSigningActive = $startOptions -match '\bTESTSIGNING\b'
$microsoftSigned = ($sysSignature.Status -eq 'Valid') -and
    ($sysSignature.SignerCertificate.Subject -match 'Microsoft Windows Hardware Compatibility Publisher')
if ($microsoftSigned) {
    Info 'rawlink.sys carries a Microsoft (WHQL/attestation) signature: test signing is not needed.'
} elseif ($testSigningActive) {
    Info 'test signing is on for this boot.'
} else {
    Fail 3 ("this package is test-signed and test signing is off for this boot. Run 'bcdedit /set testsigning on' " +
        "(Secure Boot must be off in the firmware settings), restart, and run this script again (if you already " +
        "did, restart). Without it the driver fails to load with error 577 (ERROR_INVALID_IMAGE_HASH).")
}

if ($catSignature.Status -ne 'Valid') {
    if (-not $TrustTestCertificate) {
        Fail 3 ("the publisher of rawlink.cat is not trusted on this machine ($($catSignature.StatusMessage)). " +
            "On a test machine, rerun with -TrustTestCertificate, or run: " +
            "certutil -addstore Root WDRLocalTestCert.cer; certutil -addstore TrustedPublisher WDRLocalTestCert.cer")
    }
    $cerFile = Join-Path $package 'WDRLocalTestCert.cer'
    if (Test-Path -LiteralPath $cerFile -PathType Leaf) {
        $certificate = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2($cerFile)
    } else {
        $certificate = $catSignature.SignerCertificate
    }
    # What certutil -addstore Root / TrustedPublisher does, through .NET (no program to run, nothing to parse).
    foreach ($storeName in @('Root', 'TrustedPublisher')) {
        $store = New-Object System.Security.Cryptography.X509Certificates.X509Store($storeName, 'LocalMachine')
        $store.Open('ReadWrite')
        try { $store.Add($certificate) } finally { $store.Close() }
        Info "trusted $($certificate.Subject) in LocalMachine\$storeName"
    }
    $catSignature = Get-AuthenticodeSignature -LiteralPath $cat
    if ($catSignature.Status -ne 'Valid') {
        Fail 3 "rawlink.cat is still not trusted after importing the certificate: $($catSignature.StatusMessage)"
    }
}

# --- 4. netcfg ---------------------------------------------------------------------------------------------------------
Step "Installing the protocol ($ComponentId)"
# Installed means: the INF's AddService created the RAWLINK service (netcfg -u deletes it again). netcfg -q is not
# used: it tells the answer only in (translated) text.
if (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue) {
    Info "the $ServiceName service exists: $ComponentId is installed. To upgrade, run scripts\uninstall.ps1 first. Continuing with the start."
} else {
    $code = Invoke-Native 4 'netcfg.exe' @('-v', '-l', $inf, '-c', 'p', '-i', $ComponentId)
    if ($code -eq $NetcfgRebootCode) {
        Info 'netcfg asks for a restart; restart before using the driver.'
    } elseif ($code -ne 0) {
        $hex = '0x{0:X8}' -f $code
        Fail 4 ("netcfg failed (exit code $code, $hex). See the output above and %windir%\INF\setupapi.dev.log; " +
            "a signature problem there means the catalog or test certificate is wrong.")
    }
    if (-not (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue)) {
        Fail 4 "netcfg exited with $code but the $ServiceName service does not exist."
    }
}
$driver = @(Get-CimInstance -ClassName Win32_SystemDriver -Filter "Name='$ServiceName'" -ErrorAction SilentlyContinue)
if ($driver.Count -gt 0) { Info ("service {0}: start mode {1}, binary {2}" -f $driver[0].Name, $driver[0].StartMode, $driver[0].PathName) }

if ($NoStart) {
    Step 'Done (not started: -NoStart). Start it with: sc.exe start RAWLINK'
    exit 0
}

# --- 5. Start the service ------------------------------------------------------------------------------------------
Step "Starting the $ServiceName service"
$service = Get-Service -Name $ServiceName
if ($service.Status -ne 'Running') {
    # A kernel driver's start is synchronous: sc.exe returns after DriverEntry, with the Win32 error as exit code.
    $code = Invoke-Native 5 'sc.exe' @('start', $ServiceName)
    $service.Refresh()
    if ($code -ne 0 -or $service.Status -ne 'Running') {
        $hint = switch ($code) {
            577   { 'error 577: Windows cannot verify the signature (test signing off, or Secure Boot on).' }
            1275  { 'error 1275: the driver was blocked from loading (driver block list or HVCI).' }
            127   { 'error 127: an import is missing from this Windows version (event 7000, "The specified procedure could not be found").' }
            1058  { 'error 1058: the service is disabled.' }
            default { "sc.exe exit code $code; DriverEntry may have failed - see System event log (Service Control Manager, event 7000) and the kernel debugger." }
        }
        Fail 5 "the service is $($service.Status): $hint"
    }
}
Info "service state: $($service.Status)"

# --- 6. Open the control device --------------------------------------------------------------------------------------
Step "Opening $DevicePath"
if (-not ('RawLinkInstall.Native' -as [type])) {
    Add-Type -Namespace RawLinkInstall -Name Native -MemberDefinition @'
[System.Runtime.InteropServices.DllImport("kernel32.dll", SetLastError = true, CharSet = System.Runtime.InteropServices.CharSet.Unicode)]
public static extern Microsoft.Win32.SafeHandles.SafeFileHandle CreateFileW(
    string fileName, uint desiredAccess, uint shareMode, System.IntPtr securityAttributes,
    uint creationDisposition, uint flagsAndAttributes, System.IntPtr templateFile);
'@
}
# GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, OPEN_EXISTING
$handle = [RawLinkInstall.Native]::CreateFileW($DevicePath, [uint32]3221225472, [uint32]3, [IntPtr]::Zero, [uint32]3, [uint32]0, [IntPtr]::Zero)
if ($handle.IsInvalid) {
    $win32 = [System.Runtime.InteropServices.Marshal]::GetLastWin32Error()
    $why = switch ($win32) {
        2 { 'not found: the driver is loaded but did not create \Device\RawLink / \DosDevices\Global\RawLink.' }
        5 { 'access denied by the device''s security descriptor.' }
        default { (New-Object System.ComponentModel.Win32Exception($win32)).Message }
    }
    Fail 6 "CreateFile($DevicePath) failed with Win32 error ${win32}: $why"
}
$handle.Dispose()
Info 'the device opens.'

Step 'rawlink is installed and running'
Write-Host @"
Next steps:
  rawlink --help                       the CLI (crates/rawlink): list adapters, capture, send
  netcfg -s n                          installed network components (look for RL_RAWLINK)
  sc.exe query RAWLINK                 service state; sc.exe stop RAWLINK / sc.exe start RAWLINK
  verifier /standard /driver rawlink.sys   Driver Verifier (then restart)
  scripts\uninstall.ps1                remove it again
Debugging: docs/WINDOWS.md (WinDbg symbols: $package).
"@
exit 0
