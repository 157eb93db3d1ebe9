<#
.SYNOPSIS
    Removes the rawlink NDIS protocol driver: stops it, uninstalls the protocol, deletes the driver package.

.DESCRIPTION
    The reverse of install.ps1. Steps, each with its own exit code on failure:
      1  administrator check
      2  sc.exe stop RAWLINK  (fails while a program still has \\.\RawLink open: close it first;
         this script opens nothing itself)
      3  netcfg -v -u RL_RAWLINK  (unbinds from every adapter, runs the INF's Remove sections)
      4  pnputil.exe /delete-driver oemNN.inf for every package in the driver store whose original INF is
         rawlink.inf (class NetTrans), as Get-WindowsDriver -Online lists them
    Exit code 0: nothing of rawlink is left (a restart may still be requested by netcfg).

    Works in Windows PowerShell 5.1 and PowerShell 7. Every native program's exit code is checked; no program's
    text output is parsed (it is translated). docs/WINDOWS.md, section 4, lists the same steps as commands.

.PARAMETER Force
    Continue when the service does not stop (the uninstall then completes at the next restart), and pass /force
    to pnputil.

.PARAMETER KeepPackage
    Leave the driver package in the driver store (skip step 4).
#>
[CmdletBinding()]
param(
    [switch] $Force,
    [switch] $KeepPackage
)

Set-StrictMode -Version 3
$ErrorActionPreference = 'Stop'
# PowerShell 7.3+: a native program's non-zero exit code is handled below, never turned into an error.
$PSNativeCommandUseErrorActionPreference = $false

$ComponentId = 'RL_RAWLINK'
$ServiceName = 'RAWLINK'
$OriginalInf = 'rawlink.inf'
# netcfg's success code asking for a restart (Netcfgx.h), should netcfg.exe exit with it; pnputil's is 3010
# (ERROR_SUCCESS_REBOOT_REQUIRED).
$NetcfgRebootCode = 0x0004A020
$RebootRequired = 3010

function Fail([int] $Code, [string] $Message) {
    Write-Host "rawlink uninstall: FAILED (exit $Code): $Message" -ForegroundColor Red
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
$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Fail 1 'run this script from an elevated PowerShell (Run as administrator).'
}

# --- 2. Stop the service --------------------------------------------------------------------------------------------
Step "Stopping the $ServiceName service"
# The INF's AddService created the service when netcfg installed the protocol; netcfg -u deletes it. Its existence
# is what "installed" means here (netcfg -q answers only in translated text).
$service = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
$installed = [bool] $service
if (-not $service) {
    Info 'the service does not exist (already removed?)'
} elseif ($service.Status -eq 'Stopped') {
    Info 'already stopped'
} else {
    $code = Invoke-Native 2 'sc.exe' @('stop', $ServiceName)
    try { $service.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(20)) } catch { Info $_.Exception.Message }
    $service.Refresh()
    if ($service.Status -ne 'Stopped') {
        $message = ("sc.exe exited with $code and the service is $($service.Status). A program still has \\.\RawLink " +
            "open, or the driver is waiting for NDIS to finish unbinding; close every rawlink program and try again.")
        if (-not $Force) { Fail 2 "$message (-Force continues; the driver then leaves at the next restart)" }
        Info "$message Continuing because of -Force."
    } else {
        Info 'stopped'
    }
}

# --- 3. netcfg -u ---------------------------------------------------------------------------------------------------
Step "Removing the protocol ($ComponentId)"
if (-not $installed) {
    Info "$ComponentId is not installed (no $ServiceName service)"
} else {
    $code = Invoke-Native 3 'netcfg.exe' @('-v', '-u', $ComponentId)
    if ($code -eq $NetcfgRebootCode) {
        Info 'netcfg asks for a restart to finish the removal.'
    } elseif ($code -ne 0) {
        $hex = '0x{0:X8}' -f $code
        Fail 3 "netcfg -u failed (exit code $code, $hex); see the output above and %windir%\INF\setupapi.app.log."
    }
}

# --- 4. Driver store ------------------------------------------------------------------------------------------------
if ($KeepPackage) {
    Step 'Leaving the driver package in the driver store (-KeepPackage)'
    exit 0
}
Step "Deleting the packages of $OriginalInf from the driver store"
# netcfg -l staged the package under a published name oemNN.inf. Get-WindowsDriver lists the third-party packages
# as objects: Driver is the published name, OriginalFileName the INF's path in the driver store.
$published = @(Get-WindowsDriver -Online |
    Where-Object { ([IO.Path]::GetFileName($_.OriginalFileName) -eq $OriginalInf) -and ($_.ClassName -eq 'NetTrans') } |
    ForEach-Object { $_.Driver })
if ($published.Count -eq 0) {
    Info "no package of $OriginalInf found"
}
$forceFlag = @(if ($Force) { '/force' })
foreach ($oem in $published) {
    $code = Invoke-Native 4 'pnputil.exe' (@('/delete-driver', $oem) + $forceFlag)
    if ($code -eq $RebootRequired) {
        Info "deleted $oem (original name $OriginalInf); pnputil asks for a restart"
    } elseif ($code -ne 0) {
        Fail 4 ("pnputil /delete-driver $oem failed (exit code $code). If the protocol is still installed, " +
            "restart and run this script again; -Force passes /force.")
    } else {
        Info "deleted $oem (original name $OriginalInf)"
    }
}

Step 'rawlink is removed'
exit 0
